/**
 * Invariants under thousands of random operations from 3 providers (with operators), 2 models (one
 * with a royalty), 4 users (one opening with permits; each session's receipts signed by the user or by
 * a fresh session key) and a stranger: opens (some invalid), signed usage, top-ups, every kind of close, challenges, finalizes, claims, staking and bids, with the
 * clock moving between them. After every operation:
 *   - Escrow's tokens = deposits of unsettled sessions + every account's claimable balance;
 *   - Staking's tokens = staked + unbonding, over every account;
 *   - every account's wallet, escrow balance and stake equal a shadow model that prices each
 *     settlement with protocol/'s sessionCost and splitCost (fees, royalties, bid fees, refunds);
 *   - every live session's state and every provider's openSessionCount match the shadow;
 *   - settled sessions stay erased, and (now and then) settling one again reverts;
 *   - every escrow balance, and the escrow's token balance, re-derived from the router's and the
 *     escrow's events alone (as an indexer would), equal the contract's.
 * Governance now and then moves the router's treasury, the protocol fee or the royalty cap.
 *
 * INVARIANT_SEED (uint32) and INVARIANT_OPS override the seed and the number of operations;
 * a failure names the seed and the operation's index, so the same run can be replayed.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { checkInvariants } from "./invariant/checks";
import { Multicall } from "./invariant/multicall";
import { Operations } from "./invariant/operations";
import { Prng, opsFromEnv, seedFromEnv } from "./invariant/prng";
import { setUpWorld } from "./invariant/world";

const DEFAULT_SEED = 0x1f2e3d4c;
const DEFAULT_OPS = 2_000;
/** How many of the last operations a failure prints. */
const HISTORY = 15;
const MIN_OPS_FOR_COVERAGE = 1_000;
const MUST_SUCCEED = [
  "open",
  "topUp",
  "closeByProvider",
  "closeByUser",
  "closeCooperatively",
  "closeByThirdParty",
  "challenge",
  "finalize",
  "claim",
  "claimTo",
  "stake",
  "requestUnstake",
  "withdraw",
  "postBid",
  "updateBid",
  "deleteBid",
  "setTreasury",
  "setProtocolFeeBps",
  "setMaxRoyaltyBps",
];

describe("invariants under random operations", function () {
  const seed = seedFromEnv(DEFAULT_SEED);
  const ops = opsFromEnv(DEFAULT_OPS);
  // Hardhat's default timeout is far too short for a long replay; ~40 ms an operation on a slow machine.
  this.timeout(120_000 + ops * 100);

  it(`keeps escrow, staking and every account consistent (seed ${seed}, ${ops} operations)`, async function () {
    console.log(`    invariant run: INVARIANT_SEED=${seed} INVARIANT_OPS=${ops}`);
    const world = await setUpWorld();
    const multicall = await Multicall.deploy();
    world.now = (await ethers.provider.getBlock("latest"))!.timestamp;
    const prng = new Prng(seed);
    // Checks draw their samples from their own generator, so the operations do not depend on them.
    const sampler = new Prng(seed ^ 0x9e3779b9);
    const operations = new Operations(world, prng);
    const history: string[] = [];

    await checkInvariants(world, multicall, sampler);
    for (let index = 0; index < ops; index++) {
      let ran = false;
      try {
        history.push(`${index}: ${await operations.runOne()}`);
        ran = true;
        // An operation that sent no transaction left the chain and every checked shadow value as they were.
        if (operations.sentTransaction) await checkInvariants(world, multicall, sampler);
      } catch (error) {
        if (!ran) history.push(`${index}: ${operations.note} ← failed here`);
        else history[history.length - 1] += " ← the checks after it failed";
        const where = `invariant run failed at INVARIANT_SEED=${seed} op ${index} of ${ops} (${operations.note})`;
        console.error(`${where}\n    last operations:\n      ${history.slice(-HISTORY).join("\n      ")}`);
        if (error instanceof Error) error.message = `${where}: ${error.message}`;
        throw error;
      }
      if (history.length > HISTORY) history.shift();
    }

    const settled = world.sessions.filter((session) => session.status === "settled").length;
    console.log(`    ${world.sessions.length} sessions opened, ${settled} settled; outcomes:`);
    for (const [outcome, count] of [...operations.counts].sort()) console.log(`      ${outcome}: ${count}`);
    // A long run that never took a path proves nothing about it.
    if (ops >= MIN_OPS_FOR_COVERAGE) {
      const missing = MUST_SUCCEED.filter((name) => !operations.counts.has(`${name}: ok`));
      expect(missing, `operations that never succeeded (seed ${seed})`).to.deep.equal([]);
    }
  });
});
