/**
 * The invariants, read from the chain in one batched call after every operation and compared with
 * the sums the contracts must keep, with the shadow, and with the escrow as its events describe it.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import type { Log, Result } from "ethers";
import type { Address } from "viem";
import type { Multicall } from "./multicall";
import type { Prng } from "./prng";
import { type SessionShadow, type World, accountOf } from "./world";

const STATUS = { open: 1n, closing: 2n, settled: 0n } as const;
/** Settled sessions re-read per check: their state must stay erased. */
const SETTLED_SAMPLE = 2;

export async function checkInvariants(world: World, multicall: Multicall, sampler: Prng): Promise<void> {
  const { market, addresses } = world;
  const batch = multicall.batch();
  const tokenCall = (fn: string, arg?: string) => batch.add(market.token, addresses.token, fn, arg, 1);

  const escrowTokensAt = tokenCall("balanceOf", addresses.escrow);
  const stakingTokensAt = tokenCall("balanceOf", addresses.staking);
  const totalSupplyAt = tokenCall("totalSupply");
  // Every account's wallet; escrow balances and stakes of those that can hold them. A credit or stake
  // landing anywhere else breaks the Escrow or Staking sum below, so those sums still cover everyone.
  const accountReads = world.accounts.map((account) => ({
    account,
    wallet: tokenCall("balanceOf", account.address),
    escrow: world.escrowHolders.has(account)
      ? batch.add(market.escrow, addresses.escrow, "balanceOf", account.address, 1)
      : undefined,
    stake: world.stakers.includes(account)
      ? batch.add(market.staking, addresses.staking, "stakeAccount", account.address, 3)
      : undefined,
  }));
  const unsettled = world.sessions.filter((session) => session.status !== "settled");
  const settled = world.sessions.filter((session) => session.status === "settled");
  const sampled = Array.from({ length: Math.min(SETTLED_SAMPLE, settled.length) }, () => sampler.pick(settled));
  const sessionReads = [...unsettled, ...sampled].map((session) => ({
    session,
    state: batch.add(market.sessionRouter, addresses.sessionRouter, "getSessionState", session.id, 5),
  }));
  const countReads = world.providers.map((provider) => ({
    provider,
    count: batch.add(market.sessionRouter, addresses.sessionRouter, "openSessionCount", provider.provider.address, 1),
  }));

  const results = await batch.run();
  const value = (index: number) => results[index][0];
  await applyEvents(world);
  const { ledger } = world;

  // Escrow holds exactly what live sessions deposited plus what accounts may claim.
  let escrowBalances = 0n;
  let wallets = 0n;
  let stakes = 0n;
  for (const { account, wallet, escrow, stake } of accountReads) {
    const name = world.labels.get(account.address as Address)!;
    const expected = accountOf(world, account.address);
    const [staked, unbonding, unlockAt] = stake === undefined ? [0n, 0n, 0n] : results[stake];
    const escrowBalance = escrow === undefined ? 0n : value(escrow);
    expect(value(wallet)).to.equal(expected.wallet, `token balance of ${name}`);
    expect(escrowBalance).to.equal(expected.escrow, `escrow balance of ${name}`);
    expect(ledger.balances.get(account.address) ?? 0n).to.equal(escrowBalance, `escrow balance of ${name} from events`);
    expect(staked).to.equal(expected.staked, `stake of ${name}`);
    expect(unbonding).to.equal(expected.unbonding, `unbonding stake of ${name}`);
    expect(unlockAt).to.equal(expected.unlockAt, `unlockAt of ${name}`);
    escrowBalances += escrowBalance;
    wallets += value(wallet);
    stakes += staked + unbonding;
  }

  let deposits = 0n;
  for (const { session, state } of sessionReads) {
    expectState(session, results[state]);
    if (session.status !== "settled") deposits += results[state][0];
  }
  expect(value(escrowTokensAt)).to.equal(
    deposits + escrowBalances,
    "Escrow's tokens = live deposits + claimable balances",
  );
  expect(value(escrowTokensAt)).to.equal(ledger.escrowTokens, "Escrow's tokens from events");
  // Every account the events credit is one the checks read: no balance hides elsewhere.
  const derivedTotal = [...ledger.balances.values()].reduce((sum, balance) => sum + balance, 0n);
  expect(derivedTotal).to.equal(escrowBalances, "claimable balances from events, summed");
  expect(value(stakingTokensAt)).to.equal(stakes, "Staking's tokens = staked + unbonding");
  // Every token ever minted is in a tracked wallet, the escrow or the staking contract: nothing leaks elsewhere.
  expect(value(totalSupplyAt)).to.equal(wallets + value(escrowTokensAt) + value(stakingTokensAt), "total supply");

  for (const { provider, count } of countReads) {
    const live = unsettled.filter((session) => session.provider === provider).length;
    expect(world.openCount.get(provider.provider.address as Address)).to.equal(live, "shadow open count");
    expect(value(count)).to.equal(BigInt(live), `openSessionCount of provider${provider.index}`);
  }
}

/** `getSessionState` as words: deposit, endsAt, closedAt, status, pendingSeq. */
function expectState(session: SessionShadow, words: bigint[]) {
  const what = `state of session #${session.index} (${session.status})`;
  if (session.status === "settled") {
    expect(words).to.deep.equal([0n, 0n, 0n, 0n, 0n], `${what}: a settled session is erased`);
    return;
  }
  const [deposit, endsAt, closedAt, status, pendingSeq] = words;
  expect(status).to.equal(STATUS[session.status], `${what}: status`);
  expect(deposit).to.equal(session.deposit, `${what}: deposit`);
  expect(endsAt).to.equal(BigInt(session.endsAt), `${what}: endsAt`);
  expect(closedAt).to.equal(BigInt(session.closedAt), `${what}: closedAt`);
  expect(pendingSeq).to.equal(session.pendingSeq, `${what}: pendingSeq`);
}

/**
 * Applies the router's and the escrow's logs since the last check to the event ledger, in chain
 * order, as an indexer would: nothing but the events' own fields is used.
 */
async function applyEvents(world: World): Promise<void> {
  const { ledger, addresses } = world;
  const toBlock = await ethers.provider.getBlockNumber();
  if (toBlock < ledger.fromBlock) return;
  const logs = await ethers.provider.getLogs({
    address: [addresses.sessionRouter, addresses.escrow],
    fromBlock: ledger.fromBlock,
    toBlock,
  });
  logs.sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
  const credit = (account: string, amount: bigint) =>
    ledger.balances.set(account, (ledger.balances.get(account) ?? 0n) + amount);
  for (const log of logs) {
    const parsed = parse(world, log);
    if (!parsed) continue;
    const args = parsed.args;
    switch (parsed.name) {
      case "SessionOpened": {
        const terms = args.terms as Result;
        ledger.sessions.set(args.sessionId as string, {
          provider: terms.provider as string,
          royaltyRecipient: terms.royaltyRecipient as string,
        });
        ledger.escrowTokens += args.deposit as bigint;
        break;
      }
      case "SessionToppedUp":
        ledger.escrowTokens += args.amount as bigint;
        break;
      case "SessionSettled": {
        const session = ledger.sessions.get(args.sessionId as string);
        expect(session, `SessionSettled of a session never opened: ${args.sessionId}`).to.not.equal(undefined);
        const settlement = args.settlement as Result;
        credit(session!.provider, settlement.providerAmount as bigint);
        credit(session!.royaltyRecipient, settlement.royaltyAmount as bigint);
        credit(settlement.treasury as string, settlement.feeAmount as bigint);
        // The refund leaves the escrow; if the token refused it, RefundCredited brings it back.
        ledger.escrowTokens -= settlement.refund as bigint;
        break;
      }
      case "RefundCredited":
        credit(args.user as string, args.amount as bigint);
        ledger.escrowTokens += args.amount as bigint;
        break;
      case "Claimed": {
        const account = args.account as string;
        // A claim takes the whole balance: the events must agree on what it was.
        expect(ledger.balances.get(account) ?? 0n).to.equal(args.amount, `Claimed by ${account}: its whole balance`);
        ledger.balances.set(account, 0n);
        ledger.escrowTokens -= args.amount as bigint;
        break;
      }
    }
  }
  ledger.fromBlock = toBlock + 1;
}

function parse(world: World, log: Log) {
  const { market, addresses } = world;
  const contract = log.address.toLowerCase() === addresses.escrow.toLowerCase() ? market.escrow : market.sessionRouter;
  return contract.interface.parseLog(log);
}
