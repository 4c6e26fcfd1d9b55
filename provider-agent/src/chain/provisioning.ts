/**
 * Start-up on chain, idempotent: every model file's sha256 against `ModelRegistry`; the provider's
 * stake (topped up from the provider key when configured); its registration, endpoint and operator;
 * the models it owns; its bids (posted once, updated when the prices differ, never re-posted while
 * active, so a restart pays no second bid fee).
 *
 * With the provider key (and `provider.manageOnChain`), what differs is written. Without it
 * (operator key only) nothing is written: every difference is reported, precisely, and those that
 * make serving impossible (not registered, no stake, operator not ours, a model or bid missing) stop
 * the start.
 */
import { type Address, type Hex, type LocalAccount, getAddress, zeroAddress, zeroHash } from "viem";
import {
  bidIdOf,
  marketTokenAbi,
  marketplaceAbi,
  modelIdOf,
  modelRegistryAbi,
  providerRegistryAbi,
  stakingAbi,
} from "../../../protocol/index.js";
import type { CatalogEntry } from "../catalog/model-catalog.js";
import type { Logger } from "../log/logger.js";
import type { MarketReader } from "./market.js";
import type { TransactionSender } from "./transactions.js";

export interface Difference {
  /** What is compared: `stake`, `provider.endpoint`, `bid tiny prices`… */
  subject: string;
  onChain: string;
  wanted: string;
  /** The agent cannot serve with this difference. */
  fatal: boolean;
}

export class ModelHashMismatchError extends Error {
  constructor(
    readonly entry: Pick<CatalogEntry, "name" | "id" | "path" | "configPath">,
    readonly fileSha256: Hex,
    readonly chainSha256: Hex,
  ) {
    super(
      `${entry.configPath} (${entry.name}): the file ${entry.path ?? "(upstream)"} has sha256 ${fileSha256}, ` +
        `but ModelRegistry records ${chainSha256} for model ${entry.id}: refusing to serve a different model`,
    );
    this.name = "ModelHashMismatchError";
  }
}

export class ModelNotOnChainError extends Error {
  constructor(
    readonly entry: Pick<CatalogEntry, "name" | "id" | "configPath">,
    detail: string,
  ) {
    super(`${entry.configPath} (${entry.name}): model ${entry.id} ${detail}`);
    this.name = "ModelNotOnChainError";
  }
}

export class ProvisioningError extends Error {
  constructor(
    readonly differences: readonly Difference[],
    hint: string,
  ) {
    super(
      `the on-chain setup differs from the config (${hint}):\n` +
        differences
          .map(
            (item) =>
              `  - ${item.subject}: on chain ${item.onChain}, configured ${item.wanted}${item.fatal ? " (cannot serve)" : ""}`,
          )
          .join("\n"),
    );
    this.name = "ProvisioningError";
  }
}

export class StakeTooLowError extends Error {
  constructor(
    readonly provider: Address,
    readonly stake: bigint,
    readonly minimum: bigint,
  ) {
    super(
      `provider ${provider} has ${stake} staked, below the market's minimum ${minimum}: stake ${minimum - stake} more ` +
        "(or set provider.topUpStake: true to stake it from the provider key at start)",
    );
    this.name = "StakeTooLowError";
  }
}

export interface ProvisioningOptions {
  reader: MarketReader;
  catalog: readonly CatalogEntry[];
  provider: Address;
  /** The provider key's sender; absent in operator-only mode (verify only). */
  providerSender: TransactionSender | undefined;
  operator: LocalAccount | undefined;
  endpoint: string;
  metadataURI: string;
  topUpStake: boolean;
  logger: Logger;
}

export interface ProvisioningResult {
  /** Transactions sent, by action. */
  actions: string[];
  /** Differences left (verify-only mode), none of them fatal. */
  differences: Difference[];
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Checks every model file against the chain; throws on a hash mismatch or an unusable model. */
export async function verifyModels(reader: MarketReader, catalog: readonly CatalogEntry[], provider: Address) {
  for (const entry of catalog) {
    const model = await reader.model(entry.id);
    if (entry.registration && entry.sha256 && model.owner === zeroAddress) {
      // Ours, not registered yet: its id must be the one registering will give it.
      const expected = modelIdOf(provider, entry.sha256);
      if (!same(expected, entry.id)) {
        throw new ModelNotOnChainError(
          entry,
          `is not the id of the provider's registration of this file (${expected}): remove the id or fix it`,
        );
      }
      continue;
    }
    if (!model.registered) {
      throw new ModelNotOnChainError(entry, "is not registered in ModelRegistry (give `register` to register it)");
    }
    if (entry.sha256 && !same(model.contentHash, entry.sha256)) {
      throw new ModelHashMismatchError(entry, entry.sha256, model.contentHash);
    }
    const expectedBase = entry.baseModelId ?? zeroHash;
    if (!same(model.baseModelId, expectedBase)) {
      throw new ModelNotOnChainError(
        entry,
        entry.baseModelId
          ? `is registered with base model ${model.baseModelId}, not ${entry.baseModelId}`
          : `is a LoRA adapter of ${model.baseModelId} on chain, configured as a base model`,
      );
    }
    if (!model.active && !(entry.registration && same(model.owner, provider))) {
      throw new ModelNotOnChainError(entry, "is deregistered on chain");
    }
  }
}

function pricesText(prices: { pricePerSecond: bigint; pricePerInputToken: bigint; pricePerOutputToken: bigint }) {
  return `${prices.pricePerSecond}/s, ${prices.pricePerInputToken}/input token, ${prices.pricePerOutputToken}/output token`;
}

/** Brings the chain to the config (or reports what differs, in verify-only mode). */
export async function provision(options: ProvisioningOptions): Promise<ProvisioningResult> {
  const { reader, provider, providerSender: sender, logger } = options;
  const addresses = reader.addresses;
  const actions: string[] = [];
  const differences: Difference[] = [];
  const act = async (action: string, call: Parameters<TransactionSender["send"]>[1]) => {
    if (!sender) throw new Error("unreachable: no provider key");
    await sender.send(action, call);
    actions.push(action);
  };
  const approveIfNeeded = async (spender: Address, amount: bigint, purpose: string) => {
    if (amount === 0n) return;
    if ((await reader.allowance(provider, spender)) >= amount) return;
    await act(`approve ${purpose}`, {
      address: addresses.token,
      abi: marketTokenAbi,
      functionName: "approve",
      args: [spender, amount],
    });
  };

  await verifyModels(reader, options.catalog, provider);

  // Stake.
  const [stake, minimum] = await Promise.all([reader.stakeOf(provider), reader.providerMinStake()]);
  if (stake < minimum) {
    if (!sender || !options.topUpStake) {
      if (!sender)
        differences.push({ subject: "stake", onChain: `${stake}`, wanted: `at least ${minimum}`, fatal: true });
      else throw new StakeTooLowError(provider, stake, minimum);
    } else {
      const missing = minimum - stake;
      const balance = await reader.tokenBalance(provider);
      if (balance < missing) {
        throw new StakeTooLowError(provider, stake, minimum);
      }
      await approveIfNeeded(addresses.staking, missing, "staking");
      await act(`stake ${missing}`, {
        address: addresses.staking,
        abi: stakingAbi,
        functionName: "stake",
        args: [missing],
      });
    }
  }

  // Provider registration, endpoint, operator.
  const record = await reader.provider(provider);
  const operator = options.operator?.address;
  if (!record.active) {
    if (sender) {
      await act("register provider", {
        address: addresses.providerRegistry,
        abi: providerRegistryAbi,
        functionName: "register",
        args: [options.endpoint, options.metadataURI, operator ?? zeroAddress],
      });
    } else {
      differences.push({
        subject: "provider",
        onChain: "not registered",
        wanted: `registered at ${options.endpoint}`,
        fatal: true,
      });
    }
  } else {
    if (record.endpoint !== options.endpoint) {
      if (sender) {
        await act("update provider endpoint", {
          address: addresses.providerRegistry,
          abi: providerRegistryAbi,
          functionName: "update",
          args: [options.endpoint, options.metadataURI],
        });
      } else {
        differences.push({
          subject: "provider.endpoint",
          onChain: record.endpoint,
          wanted: options.endpoint,
          fatal: false,
        });
      }
    }
    if (operator && !same(record.operator, operator)) {
      if (sender) {
        await act("set operator", {
          address: addresses.providerRegistry,
          abi: providerRegistryAbi,
          functionName: "setOperator",
          args: [operator],
        });
      } else {
        differences.push({
          subject: "provider.operator",
          onChain: record.operator === zeroAddress ? "none" : getAddress(record.operator),
          wanted: `${operator} (this agent's operator key)`,
          fatal: true,
        });
      }
    }
  }

  // Models the provider owns.
  for (const entry of options.catalog) {
    if (!entry.registration) continue;
    const model = await reader.model(entry.id);
    const registration = entry.registration;
    const subject = `model ${entry.name} (${entry.configPath})`;
    if (!model.registered || !model.active) {
      if (!entry.sha256) throw new ModelNotOnChainError(entry, "cannot be registered without the file's sha256");
      if (sender) {
        await act(`register model ${entry.name}`, {
          address: addresses.modelRegistry,
          abi: modelRegistryAbi,
          functionName: "registerModel",
          args: [
            entry.sha256,
            entry.baseModelId ?? zeroHash,
            registration.royaltyBps,
            registration.name,
            registration.uri,
            registration.tags,
          ],
        });
      } else {
        differences.push({
          subject,
          onChain: model.registered ? "deregistered" : "not registered",
          wanted: "registered",
          fatal: true,
        });
      }
    } else if (model.royaltyBps !== registration.royaltyBps) {
      if (sender) {
        await act(`update model ${entry.name} royalty`, {
          address: addresses.modelRegistry,
          abi: modelRegistryAbi,
          functionName: "updateModel",
          args: [entry.id, registration.royaltyBps, registration.name, registration.uri, registration.tags],
        });
      } else {
        differences.push({
          subject: `${subject} royaltyBps`,
          onChain: `${model.royaltyBps}`,
          wanted: `${registration.royaltyBps}`,
          fatal: false,
        });
      }
    }
  }

  // Bids.
  for (const entry of options.catalog) {
    if (!entry.bid) continue;
    const bidId = bidIdOf(provider, entry.id);
    const bid = await reader.bid(bidId);
    const wanted = entry.bid;
    const prices = {
      perSecond: wanted.pricePerSecond,
      perInputToken: wanted.pricePerInputToken,
      perOutputToken: wanted.pricePerOutputToken,
    };
    const subject = `bid on ${entry.name} (${entry.configPath}.bid)`;
    if (!bid.active) {
      if (sender) {
        await approveIfNeeded(addresses.marketplace, await reader.bidFee(), "bid fee");
        await act(`post bid ${entry.name}`, {
          address: addresses.marketplace,
          abi: marketplaceAbi,
          functionName: "postBid",
          args: [entry.id, prices],
        });
      } else {
        differences.push({ subject, onChain: "none", wanted: pricesText(wanted), fatal: true });
      }
    } else if (
      bid.prices.perSecond !== prices.perSecond ||
      bid.prices.perInputToken !== prices.perInputToken ||
      bid.prices.perOutputToken !== prices.perOutputToken
    ) {
      if (sender) {
        await act(`update bid ${entry.name}`, {
          address: addresses.marketplace,
          abi: marketplaceAbi,
          functionName: "updateBid",
          args: [bidId, prices],
        });
      } else {
        differences.push({
          subject: `${subject} prices`,
          onChain: pricesText({
            pricePerSecond: bid.prices.perSecond,
            pricePerInputToken: bid.prices.perInputToken,
            pricePerOutputToken: bid.prices.perOutputToken,
          }),
          wanted: pricesText(wanted),
          fatal: false,
        });
      }
    }
  }

  const fatal = differences.filter((item) => item.fatal);
  if (fatal.length > 0) {
    throw new ProvisioningError(
      differences,
      "operator-only mode cannot write them: start once with the provider key, or fix them from the provider's wallet",
    );
  }
  for (const difference of differences) {
    logger.warn(difference, "on-chain setup differs from the config (operator-only mode: not changed)");
  }
  if (actions.length === 0) logger.info({ provider }, "on-chain setup already matches the config");
  return { actions, differences };
}

/** The bid id of each catalog entry that bids. */
export function bidIdsOf(provider: Address, catalog: readonly CatalogEntry[]): Map<Hex, CatalogEntry> {
  return new Map(catalog.filter((entry) => entry.bid).map((entry) => [bidIdOf(provider, entry.id), entry]));
}
