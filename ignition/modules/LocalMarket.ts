import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { buildMarket } from "./market";

const FUNDED_ACCOUNTS = 10;

/** The market on a local or dev network: deploys MarketToken and funds the first test accounts. */
export default buildModule("LocalMarket", (m) => {
  const token = m.contract("MarketToken", [m.getAccount(0)]);
  const fundingPerAccount = m.getParameter("fundingPerAccount", 1_000_000n * 10n ** 18n);
  for (let i = 0; i < FUNDED_ACCOUNTS; i++) {
    m.call(token, "mint", [m.getAccount(i), fundingPerAccount], { id: `fund_account_${i}` });
  }
  return { token, ...buildMarket(m, token) };
});
