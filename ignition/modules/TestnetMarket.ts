import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { buildMarket } from "./market";

/**
 * The market on a public testnet (Arbitrum Sepolia): deploys MarketToken, owned by the deployer,
 * and funds only the deployer, the one account such a network has; the deployer mints more for
 * testers (`MarketToken.mint` is the faucet). LocalMarket cannot serve here: it funds ten accounts.
 */
export default buildModule("TestnetMarket", (m) => {
  const deployer = m.getAccount(0);
  const token = m.contract("MarketToken", [deployer]);
  const deployerFunding = m.getParameter("deployerFunding", 1_000_000n * 10n ** 18n);
  m.call(token, "mint", [deployer, deployerFunding], { id: "fund_deployer" });
  return { token, ...buildMarket(m, token) };
});
