/**
 * Seeds a LocalMarket deployment with one provider, one model and one bid:
 *
 *   npx hardhat run --network localhost scripts/seed.ts
 *
 * Account 1 stakes, registers as a provider with account 2 as its operator (hot key) and the
 * endpoint PROVIDER_ENDPOINT (default http://127.0.0.1:8080), registers a model whose sha256 is
 * MODEL_SHA256 (default: a fixed dev hash) and posts a bid on it. Idempotent: each step first reads
 * the chain and only sends what differs, so a second run sends nothing and says so.
 */
import hre from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { connectMarket, formatAmount, type MarketContracts } from "./tasks";

export const DEFAULT_PROVIDER_ENDPOINT = "http://127.0.0.1:8080";
/** sha256 of the ASCII text "inference-market dev model": a stand-in until a real GGUF is hashed. */
export const DEV_MODEL_SHA256 = "0xfd0f0f5738d35c0fb80acaeceae4809f53645464581cc0691657275e80e46073";
export const SEED_MODEL = { name: "dev-model", uri: "file://models/dev-model.gguf", tags: ["dev"], royaltyBps: 500 };
/** The bid's prices: 1e12 per second (3.6e15 an hour), 1e9 per input token, 4e9 per output token. */
export const SEED_PRICES = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };

interface SeedConfig {
  endpoint: string;
  modelSha256: string;
}

function seedConfig(env: NodeJS.ProcessEnv): SeedConfig {
  const endpoint = env.PROVIDER_ENDPOINT ?? DEFAULT_PROVIDER_ENDPOINT;
  if (!/^https?:\/\/\S+$/.test(endpoint))
    throw new Error(`PROVIDER_ENDPOINT must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
  const raw = env.MODEL_SHA256 ?? DEV_MODEL_SHA256;
  const modelSha256 = raw.startsWith("0x") ? raw : `0x${raw}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(modelSha256)) {
    throw new Error(`MODEL_SHA256 must be 32 bytes of hex (the sha256 of the GGUF file), got ${JSON.stringify(raw)}`);
  }
  return { endpoint, modelSha256: modelSha256.toLowerCase() };
}

/** Sends a transaction and waits for it; returns its hash. */
async function sent(transaction: Promise<{ hash: string; wait(): Promise<unknown> }>): Promise<string> {
  const response = await transaction;
  await response.wait();
  return response.hash;
}

/** Raises `owner`'s allowance for `spender` to at least `amount` (only when it is short). */
async function ensureAllowance(market: MarketContracts, owner: HardhatEthersSigner, spender: string, amount: bigint) {
  if ((await market.token.allowance(owner.address, spender)) < amount) {
    await sent(market.token.connect(owner).approve(spender, amount));
  }
}

/** Seeds the market; returns one line per step, and whether any step sent a transaction. */
export async function seed(env: NodeJS.ProcessEnv = process.env): Promise<{ changed: boolean; report: string[] }> {
  const config = seedConfig(env);
  const signers = await hre.ethers.getSigners();
  const [provider, operator] = [signers.at(1), signers.at(2)];
  if (provider === undefined || operator === undefined)
    throw new Error(`network ${hre.network.name} has fewer than 3 accounts: seed is for a local node`);
  const market = await connectMarket(hre);
  const report: string[] = [];
  let changed = false;
  const did = (message: string) => {
    changed = true;
    report.push(message);
  };

  // Stake: one stake counts toward both minimums (the provider also owns the model).
  const [providerMinStake, modelMinStake] = [
    await market.providerRegistry.providerMinStake(),
    await market.modelRegistry.modelMinStake(),
  ];
  const targetStake = providerMinStake > modelMinStake ? providerMinStake : modelMinStake;
  const staked = await market.staking.stakeOf(provider.address);
  if (staked >= targetStake) {
    report.push(`stake: ${provider.address} already stakes ${formatAmount(market, staked)}`);
  } else {
    const missing = targetStake - staked;
    await ensureAllowance(market, provider, market.addresses.staking, missing);
    const hash = await sent(market.staking.connect(provider).stake(missing));
    did(
      `stake: ${provider.address} staked ${formatAmount(market, missing)} (now ${formatAmount(market, targetStake)}, tx ${hash})`,
    );
  }

  // Provider: register, or bring a registered provider's endpoint and operator in line.
  const record = await market.providerRegistry.getProvider(provider.address);
  const registry = market.providerRegistry.connect(provider);
  if (!record.active) {
    const hash = await sent(registry.register(config.endpoint, "", operator.address));
    did(
      `provider: registered ${provider.address}, operator ${operator.address}, endpoint ${config.endpoint} (tx ${hash})`,
    );
  } else {
    if (record.endpoint !== config.endpoint) {
      const hash = await sent(registry.update(config.endpoint, ""));
      did(`provider: endpoint ${record.endpoint} -> ${config.endpoint} (tx ${hash})`);
    }
    if (record.operator !== operator.address) {
      const hash = await sent(registry.setOperator(operator.address));
      did(`provider: operator ${record.operator} -> ${operator.address} (tx ${hash})`);
    }
    if (record.endpoint === config.endpoint && record.operator === operator.address) {
      report.push(
        `provider: ${provider.address} already registered, operator ${operator.address}, endpoint ${config.endpoint}`,
      );
    }
  }

  // Model: owned by the provider; its id follows from owner and content hash.
  const modelId = await market.modelRegistry.modelIdOf(provider.address, config.modelSha256);
  if ((await market.modelRegistry.getModel(modelId)).active) {
    report.push(`model: ${modelId} (sha256 ${config.modelSha256}) already registered`);
  } else {
    const hash = await sent(
      market.modelRegistry
        .connect(provider)
        .registerModel(
          config.modelSha256,
          hre.ethers.ZeroHash,
          SEED_MODEL.royaltyBps,
          SEED_MODEL.name,
          SEED_MODEL.uri,
          SEED_MODEL.tags,
        ),
    );
    did(`model: registered "${SEED_MODEL.name}" ${modelId} (sha256 ${config.modelSha256}, tx ${hash})`);
  }

  // Bid: post it, or bring an active bid's prices in line.
  const bidId = await market.marketplace.bidIdOf(provider.address, modelId);
  const bid = await market.marketplace.getBid(bidId);
  const prices = `${formatAmount(market, SEED_PRICES.perSecond)}/s, ${formatAmount(market, SEED_PRICES.perInputToken)}/input token, ${formatAmount(market, SEED_PRICES.perOutputToken)}/output token`;
  if (!bid.active) {
    await ensureAllowance(market, provider, market.addresses.marketplace, await market.marketplace.bidFee());
    const hash = await sent(market.marketplace.connect(provider).postBid(modelId, SEED_PRICES));
    did(`bid: posted ${bidId} at ${prices} (tx ${hash})`);
  } else if (
    bid.pricePerSecond !== SEED_PRICES.perSecond ||
    bid.pricePerInputToken !== SEED_PRICES.perInputToken ||
    bid.pricePerOutputToken !== SEED_PRICES.perOutputToken
  ) {
    const hash = await sent(market.marketplace.connect(provider).updateBid(bidId, SEED_PRICES));
    did(`bid: updated ${bidId} to ${prices} (tx ${hash})`);
  } else {
    report.push(`bid: ${bidId} already active at ${prices}`);
  }
  return { changed, report };
}

if (require.main === module) {
  seed()
    .then(({ changed, report }) => {
      console.log(report.join("\n"));
      console.log(changed ? "seeded the market" : "nothing changed: the market was already seeded");
    })
    .catch((error: unknown) => {
      console.error(error instanceof Error ? error.message : error);
      process.exitCode = 1;
    });
}
