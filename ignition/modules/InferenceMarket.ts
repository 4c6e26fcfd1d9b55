import { buildModule } from "@nomicfoundation/hardhat-ignition/modules";
import { buildMarket } from "./market";

/** The market on a real network, around an existing ERC-20 given as the `token` parameter. */
export default buildModule("InferenceMarket", (m) => {
  const token = m.contractAt("MarketToken", m.getParameter<string>("token"), { id: "token" });
  return { token, ...buildMarket(m, token) };
});
