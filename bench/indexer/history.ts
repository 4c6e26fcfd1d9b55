/**
 * A large market history on a local `hardhat node`, fast and honest: every event comes from a
 * real transaction executed by the market contracts. Speed comes from how transactions are sent,
 * not from shortcuts in what they do:
 *
 * - providers are impersonated accounts (`hardhat_impersonateAccount`), so the node signs nothing
 *   and neither do we; dev accounts (whose keys we know) sign approvals and receipts;
 * - automine is off; transactions go in JSON-RPC batches with explicit gas and are mined with
 *   `evm_mine`, a few hundred per block.
 */
import { type Address, type Hex, encodeFunctionData, keccak256, parseEventLogs, toHex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  marketDomain,
  marketTokenAbi,
  marketplaceAbi,
  modelRegistryAbi,
  providerRegistryAbi,
  sessionRouterAbi,
  sessionTypes,
  signSessionApproval,
  signUsageReceipt,
  stakingAbi,
} from "../../protocol/index.js";
import type { LocalMarket } from "../../scripts/local-chain.js";

const E18 = 10n ** 18n;
const MAX = 2n ** 255n;

interface RpcRequest {
  method: string;
  params: unknown[];
}

/** JSON-RPC requests in batches of `size`, in order; a JSON-RPC error throws. */
async function rpcBatch(url: string, requests: readonly RpcRequest[], size = 100): Promise<unknown[]> {
  const results: unknown[] = [];
  for (let start = 0; start < requests.length; start += size) {
    const batch = requests
      .slice(start, start + size)
      .map((request, index) => ({ jsonrpc: "2.0", id: index, ...request }));
    const post = () =>
      fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(batch) });
    // A keep-alive socket the node closed while we were busy signing fails before the request is
    // sent: one retry on a fresh socket.
    const response = await post().catch(post);
    const answers = (await response.json()) as { id: number; result?: unknown; error?: { message: string } }[];
    answers.sort((a, b) => a.id - b.id);
    for (const answer of answers) {
      if (answer.error) throw new Error(`${batch[answer.id]!.method}: ${answer.error.message}`);
      results.push(answer.result);
    }
  }
  return results;
}

const rpc = async (url: string, method: string, params: unknown[] = []) =>
  (await rpcBatch(url, [{ method, params }]))[0];

interface Tx {
  from: Address;
  to: Address;
  data: Hex;
  gas: bigint;
}

export interface HistoryOptions {
  providers: number;
  sessionsPerProvider: number;
  /** BidUpdated events to add until the history holds at least this many market events. */
  targetEvents: number;
  txsPerBlock: number;
  log: (message: string) => void;
}

export interface History {
  modelId: Hex;
  events: number;
  blocks: number;
  fromBlock: number;
  toBlock: number;
}

/** Market events on the chain from `fromBlock`, counted from the logs in small ranges. */
async function countMarketEvents(url: string, addresses: LocalMarket["addresses"], fromBlock: number): Promise<number> {
  const head = Number(await rpc(url, "eth_blockNumber"));
  const market = [
    addresses.staking,
    addresses.providerRegistry,
    addresses.modelRegistry,
    addresses.marketplace,
    addresses.sessionRouter,
    addresses.escrow,
  ];
  const requests: RpcRequest[] = [];
  for (let start = fromBlock; start <= head; start += 5) {
    requests.push({
      method: "eth_getLogs",
      params: [{ address: market, fromBlock: toHex(start), toBlock: toHex(Math.min(head, start + 4)) }],
    });
  }
  const results = await rpcBatch(url, requests, 10);
  return results.reduce((total: number, logs) => total + (logs as unknown[]).length, 0);
}

export async function generateHistory(market: LocalMarket, options: HistoryOptions): Promise<History> {
  const url = market.rpcUrl;
  const { addresses } = market;
  const [governance, operator, modelOwner, ...users] = market.accounts.slice(0, 10);
  const operatorAccount = privateKeyToAccount(operator!.privateKey);
  const domain = marketDomain(market.chainId, addresses.sessionRouter);
  let events = 0;

  // The node handles a batch's requests concurrently: nonces are assigned here, not by the node.
  const nonces = new Map<Address, number>();
  const send = async (txs: readonly Tx[]) => {
    for (let start = 0; start < txs.length; start += options.txsPerBlock) {
      const block = txs.slice(start, start + options.txsPerBlock);
      const unknown = [...new Set(block.map((tx) => tx.from).filter((from) => !nonces.has(from)))];
      const counts = await rpcBatch(
        url,
        unknown.map((from) => ({ method: "eth_getTransactionCount", params: [from, "pending"] })),
      );
      unknown.forEach((from, index) => nonces.set(from, Number(counts[index])));
      const requests: RpcRequest[] = [];
      for (const tx of block) {
        const nonce = nonces.get(tx.from)!;
        nonces.set(tx.from, nonce + 1);
        requests.push({
          method: "eth_sendTransaction",
          // Explicit gas, nonce and fees: the node estimates nothing (its fee estimation alone made
          // sending a hundred times slower, and grew its memory by gigabytes).
          params: [
            {
              from: tx.from,
              to: tx.to,
              data: tx.data,
              gas: toHex(tx.gas),
              nonce: toHex(nonce),
              maxFeePerGas: toHex(100n * 10n ** 9n),
              maxPriorityFeePerGas: "0x0",
            },
          ],
        });
      }
      await rpcBatch(url, requests);
      await rpc(url, "evm_mine");
      const pending = (await rpc(url, "eth_getBlockTransactionCountByNumber", ["pending"])) as Hex | null;
      if (pending !== null && Number(pending) > 0) throw new Error(`${Number(pending)} transactions left unmined`);
    }
  };
  const call = (
    from: Address,
    to: Address,
    abi: readonly unknown[],
    functionName: string,
    args: unknown[],
    gas = 300_000n,
  ) => ({
    from,
    to,
    gas,
    // One helper for every contract call of the script; viem checks the arguments against the ABI.
    data: encodeFunctionData({ abi, functionName, args }),
  });

  await rpc(url, "evm_setAutomine", [false]);
  await rpc(url, "evm_setBlockGasLimit", [toHex(1_000_000_000n)]);
  const fromBlock = Number(await rpc(url, "eth_blockNumber")) + 1;

  // The model.
  const contentHash = keccak256(toHex("bench-model"));
  await send([
    call(modelOwner!.address, addresses.token, marketTokenAbi, "approve", [addresses.staking, MAX]),
    call(modelOwner!.address, addresses.staking, stakingAbi, "stake", [10n * E18]),
    call(modelOwner!.address, addresses.modelRegistry, modelRegistryAbi, "registerModel", [
      contentHash,
      `0x${"0".repeat(64)}`,
      500,
      "bench",
      "file://bench.gguf",
      ["bench"],
    ]),
  ]);
  events += 2;
  const registered = (await rpc(url, "eth_getLogs", [
    { address: addresses.modelRegistry, fromBlock: toHex(fromBlock) },
  ])) as {
    topics: Hex[];
  }[];
  const modelId = registered[0]!.topics[1]!;

  // Providers: impersonated, funded, staked, registered with the shared operator, one bid each.
  const providers = Array.from(
    { length: options.providers },
    (_, index): Address => `0x${(0x1000_0000n + BigInt(index)).toString(16).padStart(40, "0")}`,
  );
  await rpcBatch(
    url,
    providers.flatMap((address) => [
      { method: "hardhat_impersonateAccount", params: [address] },
      { method: "hardhat_setBalance", params: [address, toHex(10n ** 21n)] },
    ]),
  );
  options.log(`registering ${options.providers} providers`);
  // Within a block only one sender's transactions keep their order: what another sender's depend on goes first.
  await send(
    providers.map((provider) =>
      call(governance!.address, addresses.token, marketTokenAbi, "mint", [provider, 1_000n * E18]),
    ),
  );
  const setup: Tx[] = [];
  providers.forEach((provider, index) => {
    setup.push(call(provider, addresses.token, marketTokenAbi, "approve", [addresses.staking, MAX]));
    setup.push(call(provider, addresses.token, marketTokenAbi, "approve", [addresses.marketplace, MAX]));
    setup.push(call(provider, addresses.staking, stakingAbi, "stake", [100n * E18 + BigInt(index % 100) * E18]));
    setup.push(
      call(provider, addresses.providerRegistry, providerRegistryAbi, "register", [
        `http://127.0.0.1:1/p${index}`,
        "",
        operator!.address,
      ]),
    );
    setup.push(
      call(provider, addresses.marketplace, marketplaceAbi, "postBid", [
        modelId,
        { perSecond: 10n ** 12n + BigInt(index) * 10n ** 9n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n },
      ]),
    );
  });
  await send(setup);
  events += providers.length * 3;

  // Sessions: dev-account users open on every provider (operator-signed approvals), then the
  // operator settles each with the user's signed receipt.
  options.log(`opening ${options.providers * options.sessionsPerProvider} sessions`);
  const userAccounts = users.map((user) => privateKeyToAccount(user.privateKey));
  await send(
    userAccounts.map((user) =>
      call(user.address, addresses.token, marketTokenAbi, "approve", [addresses.sessionRouter, MAX]),
    ),
  );
  const latest = (await rpc(url, "eth_getBlockByNumber", ["latest", false])) as { timestamp: Hex };
  const opens: Tx[] = [];
  let nonce = 1n;
  for (let round = 0; round < options.sessionsPerProvider; round++) {
    for (const [index, provider] of providers.entries()) {
      const user = userAccounts[(index + round) % userAccounts.length]!;
      const bidId = `0x${((BigInt(provider) << 96n) | (BigInt(modelId) & ((1n << 96n) - 1n))).toString(16).padStart(64, "0")}`;
      const known: Record<string, unknown> = {
        bidId,
        user: user.address,
        maxDeposit: 10n * E18,
        maxDuration: 3_600n,
        deadline: BigInt(latest.timestamp) + 86_400n,
        nonce: nonce++,
      };
      const approval = Object.fromEntries(
        sessionTypes.SessionApproval.map((field) => [field.name, known[field.name] ?? 10_000]),
      );
      const signature = await signSessionApproval(operatorAccount, domain, approval as never);
      const maxPrices = { perSecond: MAX, perInputToken: MAX, perOutputToken: MAX };
      const openAbi = sessionRouterAbi.find((item) => item.type === "function" && item.name === "openSession") as {
        inputs: readonly unknown[];
      };
      const args: unknown[] = [approval, signature, E18, maxPrices];
      if (openAbi.inputs.length === 5) args.push(user.address);
      opens.push(call(user.address, addresses.sessionRouter, sessionRouterAbi, "openSession", args, 400_000n));
    }
  }
  const beforeOpens = Number(await rpc(url, "eth_blockNumber"));
  await send(opens);
  events += opens.length;
  const openedLogs = (await rpc(url, "eth_getLogs", [
    { address: addresses.sessionRouter, fromBlock: toHex(beforeOpens + 1) },
  ])) as Parameters<typeof parseEventLogs>[0]["logs"];
  const opened = parseEventLogs({ abi: sessionRouterAbi, logs: openedLogs, eventName: "SessionOpened" });

  await rpc(url, "evm_increaseTime", [600]);
  options.log(`settling ${opened.length} sessions`);
  const closes: Tx[] = [];
  for (const [index, log] of opened.entries()) {
    const user = userAccounts.find((account) => account.address === log.args.user)!;
    const providerIndex = providers.indexOf(log.args.provider);
    const receipt = {
      sessionId: log.args.sessionId,
      seq: 1n,
      inputTokens: 1_000n,
      outputTokens: index % 10 === 0 ? 0n : 500n,
      requests: 1,
      ttftMsAvg: 50 + (providerIndex % 200),
      tpsX1000Avg: 10_000 + (providerIndex % 97) * 1_000,
    };
    const signature = await signUsageReceipt(user, domain, receipt);
    closes.push(
      call(
        operator!.address,
        addresses.sessionRouter,
        sessionRouterAbi,
        "closeSession",
        [log.args.terms, receipt, signature, "0x"],
        400_000n,
      ),
    );
  }
  await send(closes);
  events += closes.length;

  // Price updates until the chain holds enough market events (counted from its logs, not assumed).
  const bidIds = providers.map(
    (provider): Hex =>
      `0x${((BigInt(provider) << 96n) | (BigInt(modelId) & ((1n << 96n) - 1n))).toString(16).padStart(64, "0")}`,
  );
  let round = 0;
  for (events = await countMarketEvents(url, addresses, fromBlock); events < options.targetEvents;) {
    const updates: Tx[] = [];
    while (events + updates.length < options.targetEvents) {
      round++;
      providers.forEach((provider, index) => {
        if (events + updates.length >= options.targetEvents) return;
        const prices = {
          perSecond: 10n ** 12n + BigInt(index) * 10n ** 9n + BigInt(round),
          perInputToken: 10n ** 9n,
          perOutputToken: 4n * 10n ** 9n,
        };
        updates.push(
          call(provider, addresses.marketplace, marketplaceAbi, "updateBid", [bidIds[index], prices], 80_000n),
        );
      });
    }
    options.log(`updating bids ${updates.length} times`);
    await send(updates);
    events = await countMarketEvents(url, addresses, fromBlock);
  }
  await rpc(url, "evm_setAutomine", [true]);
  const toBlock = Number(await rpc(url, "eth_blockNumber"));
  return { modelId, events, blocks: toBlock - fromBlock + 1, fromBlock, toBlock };
}
