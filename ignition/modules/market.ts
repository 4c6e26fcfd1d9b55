import type { CallableContractFuture, IgnitionModuleBuilder } from "@nomicfoundation/ignition-core";

/** The token: deployed here (`m.contract`) or existing (`m.contractAt`), by artifact name or ABI. */
type TokenFuture = CallableContractFuture<string>;

/**
 * Deploys and wires the market around an existing token. Shared by `InferenceMarket` (a real
 * network: the token is a parameter) and `LocalMarket` (a dev network: it deploys MarketToken).
 * Every number is a module parameter; the defaults suit a local node.
 */
export function buildMarket(m: IgnitionModuleBuilder, token: TokenFuture) {
  const governance = m.getAccount(0);
  const treasury = m.getParameter("treasury", governance);
  const unbondingPeriod = m.getParameter("unbondingPeriod", 7n * 24n * 3600n);
  const providerMinStake = m.getParameter("providerMinStake", 100n * 10n ** 18n);
  const modelMinStake = m.getParameter("modelMinStake", 10n * 10n ** 18n);
  const maxRoyaltyBps = m.getParameter("maxRoyaltyBps", 2_000);
  const bidFee = m.getParameter("bidFee", 1n * 10n ** 18n);
  const protocolFeeBps = m.getParameter("protocolFeeBps", 250);
  const maxSessionDuration = m.getParameter("maxSessionDuration", 24n * 3600n);
  const challengeWindow = m.getParameter("challengeWindow", 3_600);

  const staking = m.contract("Staking", [token, governance, unbondingPeriod]);
  const providerRegistry = m.contract("ProviderRegistry", [staking, governance, providerMinStake]);
  const modelRegistry = m.contract("ModelRegistry", [staking, governance, modelMinStake, maxRoyaltyBps]);
  const marketplace = m.contract("Marketplace", [token, providerRegistry, modelRegistry, governance, treasury, bidFee]);
  const sessionRouter = m.contract("SessionRouter", [
    {
      token,
      marketplace,
      providerRegistry,
      modelRegistry,
      governance,
      treasury,
      protocolFeeBps,
      maxSessionDuration,
      challengeWindow,
    },
  ]);
  const escrow = m.contractAt("Escrow", m.staticCall(sessionRouter, "escrow"));
  m.call(providerRegistry, "setSessionRouter", [sessionRouter]);

  return { staking, providerRegistry, modelRegistry, marketplace, sessionRouter, escrow };
}
