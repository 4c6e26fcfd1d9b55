/**
 * Gas used by the market's calls, read from transaction receipts on Hardhat's in-process chain,
 * against the project's targets and the Morpheus-Lumerin marketplace's published figures.
 *
 *   npm run bench:gas            (compiles first)
 *   npx hardhat run bench/gas.ts
 *
 * Steady state: every figure is taken after the accounts were warmed up — each user has had a prior
 * session (opened, closed by the provider), another session stays open and earnings are unclaimed —
 * so no storage slot is written for the first time. First-ever: the same call as the very first
 * session of a freshly deployed market, where every balance and counter slot is still zero; it is
 * printed only where it differs. Each scenario starts from the same snapshot of the market.
 */
import { config, ethers } from "hardhat";
import { takeSnapshot, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse } from "ethers";
import type { Address, Hex } from "viem";
import { type Prices, type SessionApproval, type SessionTerms, type UsageReceipt } from "../protocol";
import {
  E18,
  PARAMS,
  PRICES,
  type Market,
  approveAll,
  emptyReceipt,
  deployMarket,
  openedSession,
  receiptFor,
  signTyped,
  signPermit,
} from "../test/fixtures";

const DEPOSIT = 100n * E18;
const MAX_DEPOSIT = 1_000n * E18;
/** How long a session runs before it is closed; it prices time as well as tokens. */
const SESSION_SECONDS = 600;

/** Morpheus-Lumerin's published gas per call (their Diamond marketplace on Arbitrum). */
const MORPHEUS = {
  openSession: 498_000n,
  closeSession: 437_000n,
  claimPerSession: 102_000n,
  postModelBid: 450_000n,
  providerRegister: 175_000n,
};
const TARGETS = {
  wholeSession: 180_000n,
  openSession: 120_000n,
  closeSession: 70_000n,
  postBid: 120_000n,
  register: 120_000n,
};

interface Session {
  terms: SessionTerms;
  sessionId: Hex;
  gas: bigint;
}

interface Row {
  operation: string;
  steady: bigint;
  firstEver?: bigint;
  target?: bigint;
  reference?: { name: string; gas: bigint };
}

/** The deployed market, its actors and the calls a session makes, each returning its gas. */
class Bench {
  private nextNonce = 1n;

  constructor(
    readonly market: Market,
    readonly permitUser: HardhatEthersSigner,
    readonly bidWithRoyalty: Hex,
    readonly bidWithoutRoyalty: Hex,
  ) {}

  get router() {
    return this.market.sessionRouter;
  }

  async gasOf(send: Promise<ContractTransactionResponse>): Promise<bigint> {
    const receipt = await (await send).wait();
    return receipt!.gasUsed;
  }

  /** Opens a session on `bidId` with an approval from the provider's operator, as its agent signs it. */
  async open(options: { user?: HardhatEthersSigner; bidId?: Hex; maxDuration?: bigint } = {}): Promise<Session> {
    const user = options.user ?? this.market.user;
    const bidId = options.bidId ?? this.bidWithRoyalty;
    const bid = await this.market.marketplace.getBid(bidId);
    const approval: SessionApproval = {
      bidId,
      user: user.address as Address,
      maxDeposit: MAX_DEPOSIT,
      maxDuration: options.maxDuration ?? 3_600n,
      deadline: BigInt(await time.latest()) + 3_600n,
      // Sequential, as an agent issues them: consecutive sessions share a nonce bitmap word.
      nonce: this.nextNonce++,
      // The agent binds the royalty and fee it priced its bid with: today's.
      maxRoyaltyBps: Number((await this.market.modelRegistry.royaltyOf(bid.modelId)).royaltyBps),
      maxFeeBps: Number(await this.router.protocolFeeBps()),
    };
    const signature = await signTyped(this.market.operator, this.market.domain, "SessionApproval", approval);
    // The client passes the prices it was shown.
    const shown: Prices = {
      perSecond: bid.pricePerSecond,
      perInputToken: bid.pricePerInputToken,
      perOutputToken: bid.pricePerOutputToken,
    };
    let tx: ContractTransactionResponse;
    if (user === this.permitUser) {
      const permit = await this.signPermit(user, DEPOSIT);
      tx = await this.router
        .connect(user)
        .openSessionWithPermit(
          approval,
          signature,
          DEPOSIT,
          shown,
          user.address,
          permit.deadline,
          permit.v,
          permit.r,
          permit.s,
        );
    } else {
      // An EOA user is its own session key.
      tx = await this.router.connect(user).openSession(approval, signature, DEPOSIT, shown, user.address);
    }
    const gas = await this.gasOf(Promise.resolve(tx));
    const { sessionId, terms } = await openedSession(this.market, tx);
    return { sessionId, terms, gas };
  }

  private async signPermit(owner: HardhatEthersSigner, value: bigint) {
    const deadline = BigInt(await time.latest()) + 3_600n;
    return signPermit(this.market.token, owner, await this.router.getAddress(), value, deadline);
  }

  /** The user's signed cumulative receipt number `seq`. */
  async receipt(session: Session, seq: bigint): Promise<{ receipt: UsageReceipt; signature: Hex }> {
    const receipt = receiptFor(session.sessionId, seq, 400n * seq, 250n * seq);
    const user = session.terms.user === this.permitUser.address ? this.permitUser : this.market.user;
    return { receipt, signature: await signTyped(user, this.market.domain, "UsageReceipt", receipt) };
  }

  async closeBy(
    closer: HardhatEthersSigner,
    session: Session,
    seq = 3n,
    countersigner?: HardhatEthersSigner,
  ): Promise<bigint> {
    const { receipt, signature } =
      seq === 0n
        ? { receipt: emptyReceipt(session.sessionId), signature: "0x" as Hex }
        : await this.receipt(session, seq);
    const countersignature = countersigner
      ? await signTyped(countersigner, this.market.domain, "UsageReceipt", receipt)
      : "0x";
    return this.gasOf(this.router.connect(closer).closeSession(session.terms, receipt, signature, countersignature));
  }

  async claim(account = this.market.provider): Promise<bigint> {
    return this.gasOf(this.market.escrow.connect(account).claim());
  }

  /** Status of a session on chain: 0 settled (erased), 1 open, 2 closing. */
  async status(session: Session): Promise<bigint> {
    return (await this.router.getSessionState(session.sessionId)).status;
  }

  async expectStatus(session: Session, status: bigint, what: string) {
    const actual = await this.status(session);
    if (actual !== status) throw new Error(`${what}: session status ${actual}, expected ${status}`);
  }

  /** A prior session per user, closed by the provider; one more left open; nothing claimed. */
  async warmUp() {
    for (const user of [this.market.user, this.permitUser]) {
      const session = await this.open({ user });
      await time.increase(SESSION_SECONDS);
      await this.closeBy(this.market.provider, session);
    }
    await this.open();
  }

  /** N sessions (open + provider close), then one claim; the average per session. */
  async wholeSessions(n: number, bidId: Hex): Promise<bigint> {
    let total = 0n;
    for (let i = 0; i < n; i++) {
      const session = await this.open({ bidId });
      await time.increase(SESSION_SECONDS);
      total += session.gas + (await this.closeBy(this.market.provider, session));
      await this.expectStatus(session, 0n, "whole session");
    }
    return (total + (await this.claim())) / BigInt(n);
  }
}

/** Each scenario sets up what its call needs and returns the gas of that call alone. */
const SCENARIOS: {
  operation: string;
  target?: bigint;
  reference?: Row["reference"];
  measure: (b: Bench) => Promise<bigint>;
}[] = [
  {
    operation: "openSession",
    target: TARGETS.openSession,
    reference: { name: "openSession", gas: MORPHEUS.openSession },
    measure: async (b) => (await b.open()).gas,
  },
  {
    operation: "openSession (model without royalty)",
    measure: async (b) => (await b.open({ bidId: b.bidWithoutRoyalty })).gas,
  },
  {
    operation: "openSessionWithPermit",
    measure: async (b) => (await b.open({ user: b.permitUser })).gas,
  },
  {
    operation: "closeSession by provider",
    target: TARGETS.closeSession,
    reference: { name: "closeSession", gas: MORPHEUS.closeSession },
    measure: async (b) => {
      const session = await b.open();
      await time.increase(SESSION_SECONDS);
      const gas = await b.closeBy(b.market.provider, session);
      await b.expectStatus(session, 0n, "provider close");
      return gas;
    },
  },
  {
    operation: "closeSession by operator",
    target: TARGETS.closeSession,
    measure: async (b) => {
      const session = await b.open();
      await time.increase(SESSION_SECONDS);
      const gas = await b.closeBy(b.market.operator, session);
      await b.expectStatus(session, 0n, "operator close");
      return gas;
    },
  },
  {
    operation: "closeSession cooperative (user + countersig.)",
    target: TARGETS.closeSession,
    measure: async (b) => {
      const session = await b.open();
      await time.increase(SESSION_SECONDS);
      const gas = await b.closeBy(b.market.user, session, 3n, b.market.operator);
      await b.expectStatus(session, 0n, "cooperative close");
      return gas;
    },
  },
  {
    operation: "closeSession by user (challenge path: the close)",
    target: TARGETS.closeSession,
    measure: async (b) => {
      const session = await b.open();
      await time.increase(SESSION_SECONDS);
      const gas = await b.closeBy(b.market.user, session);
      await b.expectStatus(session, 2n, "user close");
      return gas;
    },
  },
  {
    operation: "closeSession by third party after expiry",
    target: TARGETS.closeSession,
    measure: async (b) => {
      const session = await b.open({ maxDuration: 60n });
      await time.increase(120);
      const gas = await b.closeBy(b.market.stranger, session, 0n);
      await b.expectStatus(session, 2n, "third-party close");
      return gas;
    },
  },
  {
    operation: "challenge",
    measure: async (b) => {
      const session = await b.open();
      await time.increase(SESSION_SECONDS);
      await b.closeBy(b.market.user, session, 1n);
      const closing = await b.receipt(session, 1n);
      const { receipt, signature } = await b.receipt(session, 3n);
      const gas = await b.gasOf(
        b.router.connect(b.market.operator).challenge(session.terms, closing.receipt, receipt, signature),
      );
      await b.expectStatus(session, 0n, "challenge");
      return gas;
    },
  },
  {
    operation: "finalize",
    measure: async (b) => {
      const session = await b.open();
      await time.increase(SESSION_SECONDS);
      await b.closeBy(b.market.user, session);
      await time.increase(PARAMS.challengeWindow + 1n);
      const { receipt } = await b.receipt(session, 3n);
      const gas = await b.gasOf(b.router.connect(b.market.stranger).finalize(session.terms, receipt));
      await b.expectStatus(session, 0n, "finalize");
      return gas;
    },
  },
  {
    operation: "topUp",
    measure: async (b) => {
      const session = await b.open();
      return b.gasOf(b.router.connect(b.market.user).topUp(session.terms, 50n * E18));
    },
  },
  {
    operation: "claim (provider)",
    reference: { name: "claimForProvider / session", gas: MORPHEUS.claimPerSession },
    measure: async (b) => {
      const session = await b.open();
      await time.increase(SESSION_SECONDS);
      await b.closeBy(b.market.provider, session);
      return b.claim();
    },
  },
];

async function main() {
  const market = await deployMarket();
  const [providerB, operatorB, permitUser] = market.others;
  const rows: Row[] = [];
  const gasOf = async (send: Promise<ContractTransactionResponse>) => (await (await send).wait())!.gasUsed;

  // Registration and bids happen once per provider (and model): measured as the market is set up.
  // Stake: a provider's first stake (its stake record and Staking's token balance written), then a
  // second stake of the same account (every slot already non-zero).
  const stakeGas: bigint[] = [];
  const registerGas: bigint[] = [];
  for (const [provider, operator] of [
    [market.provider, market.operator],
    [providerB, operatorB],
  ] as const) {
    await approveAll(market, provider, market.staking);
    stakeGas.push(await gasOf(market.staking.connect(provider).stake(PARAMS.providerMinStake)));
    registerGas.push(
      await gasOf(
        market.providerRegistry
          .connect(provider)
          .register("http://127.0.0.1:8080", "ipfs://provider-metadata", operator.address),
      ),
    );
  }
  await approveAll(market, market.modelOwner, market.staking);
  await market.staking.connect(market.modelOwner).stake(PARAMS.modelMinStake);
  const modelIds: Hex[] = [];
  for (const [name, royaltyBps] of [
    ["with-royalty", 500],
    ["no-royalty", 0],
  ] as const) {
    const contentHash = ethers.id(`bench-${name}.gguf`);
    await market.modelRegistry
      .connect(market.modelOwner)
      .registerModel(contentHash, ethers.ZeroHash, royaltyBps, name, "file://m", []);
    modelIds.push((await market.modelRegistry.modelIdOf(market.modelOwner.address, contentHash)) as Hex);
  }
  const [royaltyModel, plainModel] = modelIds as [Hex, Hex];
  await approveAll(market, market.provider, market.marketplace);
  await approveAll(market, providerB, market.marketplace);
  // The market's first bid also makes the treasury's first token balance; later bids find it warm.
  const postBidFirst = await gasOf(market.marketplace.connect(market.provider).postBid(royaltyModel, PRICES));
  await market.marketplace.connect(market.provider).postBid(plainModel, PRICES);
  const postBidSteady = await gasOf(market.marketplace.connect(providerB).postBid(royaltyModel, PRICES));
  const bidWithRoyalty = (await market.marketplace.bidIdOf(market.provider.address, royaltyModel)) as Hex;
  const bidWithoutRoyalty = (await market.marketplace.bidIdOf(market.provider.address, plainModel)) as Hex;
  await approveAll(market, market.user, market.sessionRouter);

  stakeGas.push(await gasOf(market.staking.connect(providerB).stake(PARAMS.providerMinStake)));
  rows.push({ operation: "stake (adding to a stake)", steady: stakeGas[2], firstEver: stakeGas[0] });
  rows.push({
    operation: "register (new provider)",
    steady: registerGas[1],
    firstEver: registerGas[0],
    target: TARGETS.register,
    reference: { name: "providerRegister", gas: MORPHEUS.providerRegister },
  });
  rows.push({
    operation: "postBid (new bid, incl. bid fee)",
    steady: postBidSteady,
    firstEver: postBidFirst,
    target: TARGETS.postBid,
    reference: { name: "postModelBid", gas: MORPHEUS.postModelBid },
  });

  const bench = new Bench(market, permitUser, bidWithRoyalty, bidWithoutRoyalty);
  const fresh = await takeSnapshot();
  {
    await market.marketplace.connect(market.provider).deleteBid(bidWithoutRoyalty);
    const repost = await gasOf(market.marketplace.connect(market.provider).postBid(plainModel, PRICES));
    rows.push({ operation: "postBid (re-post after deleteBid)", steady: repost, target: TARGETS.postBid });
    await fresh.restore();
  }

  for (const scenario of SCENARIOS) {
    const firstEver = await scenario.measure(bench);
    await fresh.restore();
    await bench.warmUp();
    const steady = await scenario.measure(bench);
    await fresh.restore();
    rows.push({
      operation: scenario.operation,
      steady,
      firstEver,
      target: scenario.target,
      reference: scenario.reference,
    });
  }

  const wholeReference = {
    name: "open + close + claim",
    gas: MORPHEUS.openSession + MORPHEUS.closeSession + MORPHEUS.claimPerSession,
  };
  for (const [label, bidId] of [
    ["5% royalty", bidWithRoyalty],
    ["0 royalty", bidWithoutRoyalty],
  ] as const) {
    for (const n of [1, 10]) {
      const firstEver = await bench.wholeSessions(n, bidId);
      await fresh.restore();
      await bench.warmUp();
      // Steady state of claiming every n sessions: the second cycle, after one has run.
      await bench.wholeSessions(n, bidId);
      const steady = await bench.wholeSessions(n, bidId);
      await fresh.restore();
      rows.push({
        operation: `whole session, ${label}, claim every ${n === 1 ? "session" : `${n} sessions`} (N = ${n})`,
        steady,
        firstEver,
        target: TARGETS.wholeSession,
        reference: wholeReference,
      });
    }
  }

  print(rows);
}

const grouped = (gas: bigint) => gas.toLocaleString("en-US");
/** Calldata alone (timestamps and nonces with more or fewer zero bytes) moves a figure by a few dozen gas. */
const CALLDATA_NOISE = 50n;
const differs = (a: bigint, b: bigint) => (a > b ? a - b : b - a) > CALLDATA_NOISE;

function print(rows: Row[]) {
  const header = ["operation", "gas", "first-ever", "target", "", "Morpheus-Lumerin reference (their gas / ours)"];
  const lines = rows.map((row) => [
    row.operation,
    grouped(row.steady),
    row.firstEver !== undefined && differs(row.firstEver, row.steady) ? grouped(row.firstEver) : "same",
    row.target !== undefined ? `≤ ${grouped(row.target)}` : "",
    row.target === undefined ? "" : row.steady <= row.target ? "ok" : "OVER",
    row.reference
      ? `${row.reference.name} ${grouped(row.reference.gas)} (${(Number(row.reference.gas) / Number(row.steady)).toFixed(1)}×)`
      : "",
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const format = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  const compiler = config.solidity.compilers[0];
  // Hardhat types solc's settings as `any`: read the two fields this header names.
  const settings = compiler.settings as { viaIR?: boolean; optimizer?: { runs?: number } };
  const optimizer = `${settings.viaIR ? "viaIR, " : ""}${String(settings.optimizer?.runs)} runs`;
  console.log(
    `Gas used per call (from transaction receipts; Hardhat in-process chain, solc ${compiler.version}, ${optimizer})`,
  );
  console.log("gas = steady state: accounts warmed by a prior session per user (opened, closed by the provider),");
  console.log("      another session open and earnings unclaimed, so no storage slot is written for the first time.");
  console.log("first-ever = the same call in a freshly deployed market (zero balances and counters);");
  console.log(`      'same' when within ${CALLDATA_NOISE} gas of the steady figure (calldata noise).`);
  console.log("whole session = N × (openSession + closeSession by provider) + one claim, divided by N.");
  console.log("");
  console.log(format(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const line of lines) console.log(format(line));
  const over = rows.filter((row) => row.target !== undefined && row.steady > row.target);
  console.log("");
  console.log(over.length === 0 ? "All targets met." : `Over target: ${over.map((row) => row.operation).join("; ")}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
