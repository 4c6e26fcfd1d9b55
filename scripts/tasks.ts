/**
 * Operator tasks, run by hand against a deployed market:
 *
 *   npx hardhat --network localhost market:provider --address 0x…
 *   npx hardhat --network localhost market:bid --id 0x…            (or --provider 0x… --model 0x…)
 *   npx hardhat --network localhost market:session --id 0x…
 *   npx hardhat --network localhost market:set-param --name protocolFeeBps --value 300 [--contract SessionRouter]
 *   npx hardhat --network localhost market:transfer-governance --to 0x…
 *
 * Addresses come from Ignition's `ignition/deployments/chain-<id>/deployed_addresses.json`, or from
 * the file given with `--deployment`. hardhat.config.ts imports this file before anything is
 * compiled, so it loads nothing heavy at import time (protocol/ and its ABIs load inside the actions)
 * and takes TypeChain's types as type-only imports, which vanish at run time.
 */
import { task, types } from "hardhat/config";
import { HardhatPluginError } from "hardhat/plugins";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { MarketAddresses } from "../protocol/addresses";
import type {
  Marketplace,
  MarketToken,
  ModelRegistry,
  ProviderRegistry,
  SessionRouter,
  Staking,
} from "../typechain-types";

const PLUGIN = "market";

function fail(message: string): never {
  throw new HardhatPluginError(PLUGIN, message);
}

const DEPLOYMENT_FLAG_HELP =
  "Path of a deployed_addresses.json (default: ignition/deployments/chain-<chain id>/deployed_addresses.json)";

/** Hardhat's in-process network: what a task runs on when no --network is given. */
const HARDHAT_NETWORK_NAME = "hardhat";

/**
 * A task run without --network runs on Hardhat's in-process network: a fresh, empty chain with the
 * same chain id (31337) as a local node, so Ignition's chain-31337 file points at nothing there.
 */
const IN_PROCESS_NETWORK_MESSAGE =
  "add --network localhost: without --network the task runs on Hardhat's in-process network, a fresh and " +
  "empty chain on every run, not on the node `npm start` runs (for another node, name its network, or pass " +
  "--deployment with the addresses of a market deployed on the in-process network)";

/** The contracts whose governance is `AccessControl`'s DEFAULT_ADMIN_ROLE. */
export const GOVERNED_CONTRACTS = [
  "Staking",
  "ProviderRegistry",
  "ModelRegistry",
  "Marketplace",
  "SessionRouter",
] as const;
export type GovernedContractName = (typeof GOVERNED_CONTRACTS)[number];

export interface MarketContracts {
  addresses: MarketAddresses;
  deploymentPath: string;
  chainId: number;
  token: MarketToken;
  staking: Staking;
  providerRegistry: ProviderRegistry;
  modelRegistry: ModelRegistry;
  marketplace: Marketplace;
  sessionRouter: SessionRouter;
  symbol: string;
  decimals: number;
}

/**
 * The deployed market on `hre`'s network, connected to `signer` (read-only when absent). Fails
 * clearly when the file is missing or malformed, or when the chain has no contract where it says:
 * a restarted `hardhat node` is a new chain with the same id, so an old file points at nothing.
 */
export async function connectMarket(
  hre: HardhatRuntimeEnvironment,
  deploymentPath?: string,
  signer?: HardhatEthersSigner,
): Promise<MarketContracts> {
  if (hre.network.name === HARDHAT_NETWORK_NAME && deploymentPath === undefined) fail(IN_PROCESS_NETWORK_MESSAGE);
  const { deploymentFile, loadMarketAddresses } = await import("../protocol/addresses");
  const abis = await import("../protocol/abis");
  const chainId = Number(await hre.network.provider.request({ method: "eth_chainId" }));
  const path = deploymentPath ?? deploymentFile(hre.config.paths.root, chainId);
  let addresses: MarketAddresses;
  try {
    addresses = loadMarketAddresses(path);
  } catch (error) {
    fail((error as Error).message);
  }
  for (const [name, address] of Object.entries(addresses) as [keyof MarketAddresses, string][]) {
    if ((await hre.ethers.provider.getCode(address)) === "0x") {
      fail(
        `no contract at ${address} (${name} in ${path}) on network ${hre.network.name} (chain ${chainId}): ` +
          "the file belongs to another chain (a restarted hardhat node is a new chain: run `npm start` again)",
      );
    }
  }
  // The ABIs are `as const` tuples; ethers takes a mutable array. TypeChain's types (type-only) name the result.
  const at = async <T>(abi: readonly unknown[], address: string) =>
    (await hre.ethers.getContractAt([...abi], address, signer)) as unknown as T;
  const token = await at<MarketToken>(abis.marketTokenAbi, addresses.token);
  return {
    addresses,
    deploymentPath: path,
    chainId,
    token,
    staking: await at<Staking>(abis.stakingAbi, addresses.staking),
    providerRegistry: await at<ProviderRegistry>(abis.providerRegistryAbi, addresses.providerRegistry),
    modelRegistry: await at<ModelRegistry>(abis.modelRegistryAbi, addresses.modelRegistry),
    marketplace: await at<Marketplace>(abis.marketplaceAbi, addresses.marketplace),
    sessionRouter: await at<SessionRouter>(abis.sessionRouterAbi, addresses.sessionRouter),
    symbol: await token.symbol(),
    decimals: Number(await token.decimals()),
  };
}

/** `amount` base units as "1.5 INFER". */
export function formatAmount(market: Pick<MarketContracts, "symbol" | "decimals">, amount: bigint): string {
  const units = amount.toString().padStart(market.decimals + 1, "0");
  const whole = units.slice(0, units.length - market.decimals);
  const fraction = units.slice(units.length - market.decimals).replace(/0+$/, "");
  return `${whole}${fraction ? `.${fraction}` : ""} ${market.symbol}`;
}

function formatTime(unixSeconds: bigint | number): string {
  if (BigInt(unixSeconds) === 0n) return "-";
  return `${new Date(Number(unixSeconds) * 1000).toISOString()} (${unixSeconds})`;
}

function line(label: string, value: string | number | bigint | boolean): string {
  return `  ${label.padEnd(18)}${typeof value === "boolean" ? (value ? "yes" : "no") : value}`;
}

function parseAddress(hre: HardhatRuntimeEnvironment, value: string | undefined, flag: string): string {
  if (value === undefined || !hre.ethers.isAddress(value) || !value.startsWith("0x")) {
    fail(`--${flag} must be a 0x-prefixed 20-byte address, got ${JSON.stringify(value ?? "")}`);
  }
  return hre.ethers.getAddress(value);
}

function parseBytes32(hre: HardhatRuntimeEnvironment, value: string | undefined, flag: string): string {
  if (value === undefined || !hre.ethers.isHexString(value, 32)) {
    fail(`--${flag} must be a 0x-prefixed 32-byte hex string, got ${JSON.stringify(value ?? "")}`);
  }
  return value.toLowerCase();
}

/** A revert as the contract's error ("ProtocolFeeTooHigh(5000, 1000)") when ethers decoded it. */
function describeError(error: unknown): string {
  const decoded = error as { revert?: { name: string; args: unknown[] }; shortMessage?: string; message?: string };
  if (decoded.revert) return `${decoded.revert.name}(${decoded.revert.args.map(String).join(", ")})`;
  const message = decoded.shortMessage ?? decoded.message ?? String(error);
  // Hardhat's own networks decode the error into the message instead.
  return /reverted with custom error '([^']+)'/.exec(message)?.[1] ?? message;
}

async function firstSigner(hre: HardhatRuntimeEnvironment): Promise<HardhatEthersSigner> {
  const signer = (await hre.ethers.getSigners()).at(0);
  if (signer === undefined) fail(`network ${hre.network.name} has no account to send from (set DEPLOYER_PRIVATE_KEY)`);
  return signer;
}

async function send(what: string, transaction: () => Promise<{ hash: string; wait(): Promise<unknown> }>) {
  try {
    const sent = await transaction();
    await sent.wait();
    return sent.hash;
  } catch (error) {
    fail(`${what} failed: ${describeError(error)}`);
  }
}

function formatPrices(market: MarketContracts, perSecond: bigint, perInputToken: bigint, perOutputToken: bigint) {
  return [
    line("per second", `${formatAmount(market, perSecond)} (${perSecond})`),
    line("per input token", `${formatAmount(market, perInputToken)} (${perInputToken})`),
    line("per output token", `${formatAmount(market, perOutputToken)} (${perOutputToken})`),
  ];
}

/** A model's name, from its latest ModelRegistered/ModelUpdated event (names live only in events). */
async function modelName(market: MarketContracts, modelId: string): Promise<string | undefined> {
  const registry = market.modelRegistry;
  const events = [
    ...(await registry.queryFilter(registry.filters.ModelRegistered(modelId))),
    ...(await registry.queryFilter(registry.filters.ModelUpdated(modelId))),
  ].sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
  return events.at(-1)?.args.name;
}

task("market:provider", "Prints a provider: registration, operator, endpoint, stake, open sessions and bids")
  .addParam("address", "The provider's address")
  .addOptionalParam("deployment", DEPLOYMENT_FLAG_HELP)
  .setAction(async (args: { address: string; deployment?: string }, hre) => {
    const address = parseAddress(hre, args.address, "address");
    const market = await connectMarket(hre, args.deployment);
    const record = await market.providerRegistry.getProvider(address);
    if (record.registeredAt === 0n) {
      fail(`provider ${address} is not registered (ProviderRegistry ${market.addresses.providerRegistry})`);
    }
    const stake = await market.staking.stakeAccount(address);
    const minimum = await market.providerRegistry.providerMinStake();
    const out = [
      `provider ${address}`,
      line("active", record.active),
      line("operator", record.operator === hre.ethers.ZeroAddress ? "none" : record.operator),
      line("endpoint", record.endpoint),
      line("registered at", formatTime(record.registeredAt)),
      line(
        "stake",
        `${formatAmount(market, stake.staked)} (minimum ${formatAmount(market, minimum)}: ${stake.staked >= minimum ? "enough" : "TOO LOW"})`,
      ),
      line(
        "unbonding",
        `${formatAmount(market, stake.unbonding)}${stake.unbonding > 0n ? `, unlocks ${formatTime(stake.unlockAt)}` : ""}`,
      ),
      line("open sessions", await market.sessionRouter.openSessionCount(address)),
      line("next nonce", await market.sessionRouter.nextApprovalNonce(address)),
    ];
    const posted = await market.marketplace.queryFilter(market.marketplace.filters.BidPosted(undefined, address));
    const bidIds = [...new Set(posted.map((event) => event.args.bidId))];
    out.push(line("bids", bidIds.length === 0 ? "none" : bidIds.length));
    for (const bidId of bidIds) {
      const bid = await market.marketplace.getBid(bidId);
      out.push(`    ${bidId} model ${bid.modelId} ${bid.active ? "active" : "deleted"}`);
    }
    console.log(out.join("\n"));
  });

task("market:bid", "Prints a bid: its provider, model and prices")
  .addOptionalParam("id", "The bid id (or give --provider and --model)")
  .addOptionalParam("provider", "The bid's provider (with --model)")
  .addOptionalParam("model", "The bid's model id (with --provider)")
  .addOptionalParam("deployment", DEPLOYMENT_FLAG_HELP)
  .setAction(async (args: { id?: string; provider?: string; model?: string; deployment?: string }, hre) => {
    if (args.id !== undefined && (args.provider !== undefined || args.model !== undefined)) {
      fail("give either --id or --provider with --model, not both");
    }
    if (args.id === undefined && (args.provider === undefined || args.model === undefined)) {
      fail("give --id, or --provider and --model");
    }
    const market = await connectMarket(hre, args.deployment);
    const bidId =
      args.id !== undefined
        ? parseBytes32(hre, args.id, "id")
        : await market.marketplace.bidIdOf(
            parseAddress(hre, args.provider, "provider"),
            parseBytes32(hre, args.model, "model"),
          );
    const bid = await market.marketplace.getBid(bidId);
    if (bid.modelId === hre.ethers.ZeroHash) fail(`no bid ${bidId} (Marketplace ${market.addresses.marketplace})`);
    const provider = await market.marketplace.providerOf(bidId);
    const model = await market.modelRegistry.getModel(bid.modelId);
    const name = await modelName(market, bid.modelId);
    console.log(
      [
        `bid ${bidId}`,
        line("active", bid.active),
        line("provider", `${provider}${(await market.providerRegistry.isActive(provider)) ? "" : " (not active)"}`),
        line("model", `${bid.modelId}${name === undefined ? "" : ` "${name}"`}${model.active ? "" : " (not active)"}`),
        line("model owner", model.owner),
        line("royalty", `${model.royaltyBps} bps`),
        ...formatPrices(market, bid.pricePerSecond, bid.pricePerInputToken, bid.pricePerOutputToken),
      ].join("\n"),
    );
  });

const STATUS_NAMES = ["None", "Open", "Closing"] as const;

task("market:session", "Prints a session's terms (from its SessionOpened event) and its state now")
  .addParam("id", "The session id")
  .addOptionalParam("fromBlock", "First block to search for the session's events", 0, types.int)
  .addOptionalParam("deployment", DEPLOYMENT_FLAG_HELP)
  .setAction(async (args: { id: string; fromBlock: number; deployment?: string }, hre) => {
    const sessionId = parseBytes32(hre, args.id, "id");
    const market = await connectMarket(hre, args.deployment);
    const router = market.sessionRouter;
    const opened = (await router.queryFilter(router.filters.SessionOpened(sessionId), args.fromBlock)).at(0);
    if (opened === undefined) {
      fail(
        `no session ${sessionId}: SessionRouter ${market.addresses.sessionRouter} emitted no SessionOpened for it since block ${args.fromBlock}`,
      );
    }
    const terms = opened.args.terms;
    const state = await router.getSessionState(sessionId);
    const toppedUp = await router.queryFilter(router.filters.SessionToppedUp(sessionId), opened.blockNumber);
    const settled = (await router.queryFilter(router.filters.SessionSettled(sessionId), opened.blockNumber)).at(0);
    const out = [
      `session ${sessionId}`,
      `terms (SessionOpened, block ${opened.blockNumber}, tx ${opened.transactionHash})`,
      line("user", terms.user),
      line("session key", terms.sessionKey),
      line("provider", terms.provider),
      line("bid", opened.args.bidId),
      line("model", terms.modelId),
      line("approval nonce", terms.nonce),
      ...formatPrices(market, terms.pricePerSecond, terms.pricePerInputToken, terms.pricePerOutputToken),
      line("royalty", `${terms.royaltyBps} bps to ${terms.royaltyRecipient}`),
      line("protocol fee", `${terms.feeBps} bps`),
      line("challenge window", `${terms.challengeWindow} s`),
      line("max deposit", formatAmount(market, terms.maxDeposit)),
      line("opened at", formatTime(terms.openedAt)),
      line("max ends at", formatTime(terms.maxEndsAt)),
      line("opening deposit", formatAmount(market, opened.args.deposit)),
      line("top-ups", toppedUp.length),
    ];
    if (settled !== undefined) {
      const { settlement, receipt } = settled.args;
      out.push(
        `state: settled (block ${settled.blockNumber}${settled.args.challenged ? ", after a challenge" : ""})`,
        line("closed by", settled.args.closedBy),
        line("elapsed", `${settlement.elapsedSeconds} s`),
        line(
          "receipt",
          receipt.seq === 0n
            ? "none"
            : `seq ${receipt.seq}, ${receipt.inputTokens} in / ${receipt.outputTokens} out tokens, ${receipt.requests} requests`,
        ),
        line("cost", formatAmount(market, settlement.cost)),
        line("to provider", formatAmount(market, settlement.providerAmount)),
        line("royalty", formatAmount(market, settlement.royaltyAmount)),
        line("protocol fee", formatAmount(market, settlement.feeAmount)),
        line("fee credited to", settlement.treasury),
        line("refund", formatAmount(market, settlement.refund)),
      );
    } else {
      out.push(
        `state: ${STATUS_NAMES[Number(state.status)] ?? `status ${state.status}`}`,
        line("deposit", formatAmount(market, state.deposit)),
        line("ends at", formatTime(state.endsAt)),
      );
      if (state.closedAt !== 0n) {
        out.push(
          line("close requested", formatTime(state.closedAt)),
          line("challenge ends", formatTime(state.closedAt + terms.challengeWindow)),
          line("pending receipt", state.pendingSeq === 0n ? "none" : `seq ${state.pendingSeq}`),
        );
      }
    }
    console.log(out.join("\n"));
  });

type ParameterKind = { type: "uint"; bits: number } | { type: "address" };

interface GovernanceParameter {
  contracts: readonly GovernedContractName[];
  setter: string;
  kind: ParameterKind;
}

/** Each governance parameter, the contracts that hold it (the getter has its name) and its setter. */
export const GOVERNANCE_PARAMETERS: Record<string, GovernanceParameter> = {
  protocolFeeBps: { contracts: ["SessionRouter"], setter: "setProtocolFeeBps", kind: { type: "uint", bits: 16 } },
  maxSessionDuration: {
    contracts: ["SessionRouter"],
    setter: "setMaxSessionDuration",
    kind: { type: "uint", bits: 64 },
  },
  challengeWindow: { contracts: ["SessionRouter"], setter: "setChallengeWindow", kind: { type: "uint", bits: 32 } },
  treasury: { contracts: ["SessionRouter", "Marketplace"], setter: "setTreasury", kind: { type: "address" } },
  bidFee: { contracts: ["Marketplace"], setter: "setBidFee", kind: { type: "uint", bits: 256 } },
  providerMinStake: {
    contracts: ["ProviderRegistry"],
    setter: "setProviderMinStake",
    kind: { type: "uint", bits: 256 },
  },
  modelMinStake: { contracts: ["ModelRegistry"], setter: "setModelMinStake", kind: { type: "uint", bits: 256 } },
  maxRoyaltyBps: { contracts: ["ModelRegistry"], setter: "setMaxRoyaltyBps", kind: { type: "uint", bits: 16 } },
  unbondingPeriod: { contracts: ["Staking"], setter: "setUnbondingPeriod", kind: { type: "uint", bits: 64 } },
};

function governedContract(market: MarketContracts, name: GovernedContractName) {
  const contracts = {
    Staking: market.staking,
    ProviderRegistry: market.providerRegistry,
    ModelRegistry: market.modelRegistry,
    Marketplace: market.marketplace,
    SessionRouter: market.sessionRouter,
  };
  return contracts[name];
}

/** The contract's own value type for `value`: a bigint in range, or a checksummed address. */
function parseParameterValue(
  hre: HardhatRuntimeEnvironment,
  name: string,
  kind: ParameterKind,
  value: string,
): bigint | string {
  if (kind.type === "address") {
    if (!hre.ethers.isAddress(value) || !value.startsWith("0x"))
      fail(`--value of ${name} must be an address, got ${JSON.stringify(value)}`);
    return hre.ethers.getAddress(value);
  }
  if (!/^\d+$/.test(value))
    fail(`--value of ${name} must be a whole number (base units, seconds or bps), got ${JSON.stringify(value)}`);
  const parsed = BigInt(value);
  if (parsed >= 1n << BigInt(kind.bits)) fail(`--value of ${name} does not fit in uint${kind.bits}: ${value}`);
  return parsed;
}

interface SetParamArgs {
  contract?: string;
  name: string;
  value: string;
  deployment?: string;
}

task("market:set-param", "Governance: sets a market parameter through its contract's setter")
  .addParam("name", `One of: ${Object.keys(GOVERNANCE_PARAMETERS).join(", ")}`)
  .addParam("value", "The new value: base units, seconds, basis points or an address")
  .addOptionalParam("contract", "The contract to set it on (default: every contract that holds it)")
  .addOptionalParam("deployment", DEPLOYMENT_FLAG_HELP)
  .setAction(async (args: SetParamArgs, hre) => {
    const parameter = GOVERNANCE_PARAMETERS[args.name];
    if (!Object.hasOwn(GOVERNANCE_PARAMETERS, args.name)) {
      fail(
        `unknown parameter ${JSON.stringify(args.name)}; known parameters: ${Object.keys(GOVERNANCE_PARAMETERS).join(", ")}`,
      );
    }
    let targets = parameter.contracts;
    if (args.contract !== undefined) {
      const wanted = args.contract.toLowerCase();
      const named = GOVERNED_CONTRACTS.find((contract) => contract.toLowerCase() === wanted);
      if (named === undefined)
        fail(`unknown contract ${JSON.stringify(args.contract)}; governed contracts: ${GOVERNED_CONTRACTS.join(", ")}`);
      if (!parameter.contracts.includes(named))
        fail(`${named} has no parameter ${args.name}; it lives in ${parameter.contracts.join(", ")}`);
      targets = [named];
    }
    const value = parseParameterValue(hre, args.name, parameter.kind, args.value);
    const signer = await firstSigner(hre);
    const market = await connectMarket(hre, args.deployment, signer);
    for (const name of targets) {
      const contract = governedContract(market, name);
      // The setter and getter are looked up by name: ethers Contracts index their ABI functions so.
      const read = contract.getFunction(args.name);
      const write = contract.getFunction(parameter.setter);
      const current = (await read.staticCall()) as bigint | string;
      if (current === value) {
        console.log(`${name}.${args.name} is already ${String(value)}: nothing sent`);
        continue;
      }
      if (!(await contract.hasRole(hre.ethers.ZeroHash, signer.address))) {
        fail(`${signer.address} does not hold DEFAULT_ADMIN_ROLE on ${name} ${await contract.getAddress()}`);
      }
      const hash = await send(`${name}.${parameter.setter}(${String(value)})`, () => write.send(value));
      console.log(`${name}.${args.name}: ${String(current)} -> ${String(value)} (tx ${hash})`);
    }
  });

task(
  "market:transfer-governance",
  "Grants DEFAULT_ADMIN_ROLE on the governed contracts to --to, then renounces the caller's",
)
  .addParam("to", "The new governance address (a multisig, say)")
  .addOptionalParam("deployment", DEPLOYMENT_FLAG_HELP)
  .setAction(async (args: { to: string; deployment?: string }, hre) => {
    const to = parseAddress(hre, args.to, "to");
    if (to === hre.ethers.ZeroAddress) fail("--to must not be the zero address");
    const signer = await firstSigner(hre);
    if (to === signer.address) fail(`--to is the caller ${signer.address}: nothing to transfer`);
    const market = await connectMarket(hre, args.deployment, signer);
    const adminRole = hre.ethers.ZeroHash;
    // Every check before any transaction, and every grant before any renounce: a failure part-way
    // never leaves a contract without an admin.
    for (const name of GOVERNED_CONTRACTS) {
      if (!(await governedContract(market, name).hasRole(adminRole, signer.address))) {
        fail(`${signer.address} does not hold DEFAULT_ADMIN_ROLE on ${name}: nothing was changed`);
      }
    }
    for (const name of GOVERNED_CONTRACTS) {
      const contract = governedContract(market, name);
      const hash = await send(`${name}.grantRole`, () => contract.grantRole(adminRole, to));
      console.log(`${name}: granted DEFAULT_ADMIN_ROLE to ${to} (tx ${hash})`);
    }
    for (const name of GOVERNED_CONTRACTS) {
      const contract = governedContract(market, name);
      const hash = await send(`${name}.renounceRole`, () => contract.renounceRole(adminRole, signer.address));
      console.log(`${name}: ${signer.address} renounced DEFAULT_ADMIN_ROLE (tx ${hash})`);
    }
    console.log(`governance of the market is now ${to}`);
  });
