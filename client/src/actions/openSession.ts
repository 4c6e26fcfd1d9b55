/**
 * Opens a session: for each candidate bid (the one asked, or the model's ranking, best first) ask
 * the provider's agent for an approval, check it, and open with an ERC-2612 permit in one
 * transaction, naming a fresh session key. A provider that refuses, is down, or hands out a bad
 * approval is skipped for the next one. The session key is sealed in the store before the open
 * transaction is sent, so a crash at any point can never lose a session's key.
 */
import { type Address, type Hex, parseEventLogs, parseSignature } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import {
  type Prices,
  marketTokenAbi,
  marketplaceAbi,
  modelRegistryAbi,
  permitDomain,
  permitTypes,
  providerOfBid,
  sessionRouterAbi,
} from "../../../protocol/index.js";
import { approvalToJson, pricesToJson } from "../../../protocol/agent-api.js";
import { type ApprovalResponse, requestApproval } from "../agent/agent-client.js";
import { assertBalance, ensureAllowance } from "../chain/allowance.js";
import { formatAmount } from "../chain/amounts.js";
import { chainNow } from "../chain/clock.js";
import { readProvider } from "../chain/market-logs.js";
import { decodeRevert } from "../chain/revert.js";
import { requireWallet, sendContractCall } from "../chain/send.js";
import type { MarketContext } from "../context.js";
import {
  AgentRequestError,
  ApprovalRejectedError,
  ContractRevertError,
  InvalidArgumentError,
  NoProviderAvailableError,
  type OpenAttempt,
  SessionStoreError,
} from "../errors.js";
import { type MarketSession, sessionFromRecord } from "../session/market-session.js";
import { verifyApproval } from "../session/verify-approval.js";
import { SESSION_RECORD_VERSION, type SessionRecord, termsToJson } from "../store/session-record.js";
import type { SessionStore } from "../store/session-store.js";
import { rankBids } from "./rankBids.js";

export interface OpenSessionParams {
  /** Open on the model's best bid that works (needs the indexer, or reads bids from the chain)… */
  modelId?: Hex;
  /** …or on this bid only. */
  bidId?: Hex;
  /** Tokens to lock, base units. */
  deposit: bigint;
  /** Longest the session may run, seconds. */
  maxDuration: number;
  /** How many ranked bids to try at most (default 5). */
  maxAttempts?: number;
}

export interface OpenSessionResult {
  session: MarketSession;
  /** The bids tried before the one that opened, and why each was skipped. */
  skipped: OpenAttempt[];
  txHash: Hex;
}

/** Reverts that say the user's own request is wrong: trying another provider would not help. */
const USER_SIDE_ERRORS = new Set([
  "ERC20InsufficientBalance",
  "ERC20InsufficientAllowance",
  "ZeroDeposit",
  "DepositTooLarge",
  "ZeroSessionKey",
]);

interface Candidate {
  bidId: Hex;
  shownPrices: Prices;
}

export function requireStore(ctx: MarketContext): SessionStore {
  if (!ctx.store) throw new SessionStoreError("sessions need a wallet and a store directory");
  return ctx.store;
}

export async function openSession(ctx: MarketContext, params: OpenSessionParams): Promise<OpenSessionResult> {
  const wallet = requireWallet(ctx);
  requireStore(ctx);
  if ((params.modelId === undefined) === (params.bidId === undefined)) {
    throw new InvalidArgumentError("openSession", "give exactly one of modelId and bidId");
  }
  if (params.deposit <= 0n) throw new InvalidArgumentError("deposit", "must be above zero");
  const maxSessionDuration = Number(
    await ctx.publicClient.readContract({
      address: ctx.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "maxSessionDuration",
    }),
  );
  if (!Number.isInteger(params.maxDuration) || params.maxDuration < 1 || params.maxDuration > maxSessionDuration) {
    throw new InvalidArgumentError(
      "maxDuration",
      `${params.maxDuration} s is out of range: a session lasts from 1 to ${maxSessionDuration} s on this market`,
    );
  }
  await assertBalance(ctx, params.deposit, "the deposit");

  const candidates: Candidate[] = [];
  if (params.bidId !== undefined) {
    const bid = await ctx.publicClient.readContract({
      address: ctx.addresses.marketplace,
      abi: marketplaceAbi,
      functionName: "getBid",
      args: [params.bidId],
    });
    if (!bid.active) throw new NoProviderAvailableError(`bid ${params.bidId}`, []);
    candidates.push({
      bidId: params.bidId,
      shownPrices: {
        perSecond: bid.pricePerSecond,
        perInputToken: bid.pricePerInputToken,
        perOutputToken: bid.pricePerOutputToken,
      },
    });
  } else {
    const ranked = await ctx.progress.step("ranking bids", () => rankBids(ctx, params.modelId!));
    for (const bid of ranked.slice(0, params.maxAttempts ?? 5)) {
      candidates.push({ bidId: bid.bidId, shownPrices: bid.prices });
    }
  }
  const target = params.bidId !== undefined ? `bid ${params.bidId}` : `model ${params.modelId}`;
  if (candidates.length === 0) throw new NoProviderAvailableError(target, []);

  const skipped: OpenAttempt[] = [];
  for (const candidate of candidates) {
    const provider = providerOfBid(candidate.bidId);
    let endpoint = "";
    try {
      const registration = await readProvider(ctx, provider);
      endpoint = registration.endpoint;
      if (!registration.active) throw new ApprovalRejectedError(candidate.bidId, "the provider is not active");
      const approval = await ctx.progress.step(`asking ${endpoint} for an approval`, () =>
        requestApproval(
          { endpoint, fetch: ctx.fetch, timeoutMs: ctx.settings.agentTimeoutMs },
          {
            bidId: candidate.bidId,
            user: wallet.account.address,
            deposit: params.deposit,
            maxDuration: params.maxDuration,
          },
        ),
      );
      await checkApproval(ctx, candidate, approval, registration.operator, params);
      const opened = await openWithApproval(ctx, candidate, approval, endpoint, params);
      return { ...opened, skipped };
    } catch (error) {
      if (!isProviderSideFailure(error)) throw error;
      skipped.push({ bidId: candidate.bidId, provider, endpoint, reason: (error as Error).message });
    }
  }
  throw new NoProviderAvailableError(target, skipped);
}

function isProviderSideFailure(error: unknown): boolean {
  if (error instanceof AgentRequestError || error instanceof ApprovalRejectedError) return true;
  if (error instanceof ContractRevertError) return !USER_SIDE_ERRORS.has(error.errorName);
  return false;
}

async function checkApproval(
  ctx: MarketContext,
  candidate: Candidate,
  response: ApprovalResponse,
  operator: Address,
  params: OpenSessionParams,
): Promise<void> {
  const [bid, royalty, feeBps, now] = await Promise.all([
    ctx.publicClient.readContract({
      address: ctx.addresses.marketplace,
      abi: marketplaceAbi,
      functionName: "getBid",
      args: [candidate.bidId],
    }),
    ctx.publicClient.readContract({
      address: ctx.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "modelRegistry",
    }),
    ctx.publicClient.readContract({
      address: ctx.addresses.sessionRouter,
      abi: sessionRouterAbi,
      functionName: "protocolFeeBps",
    }),
    chainNow(ctx),
  ]);
  if (!bid.active) throw new ApprovalRejectedError(candidate.bidId, "the bid is no longer active");
  const [, , royaltyBps] = await ctx.publicClient.readContract({
    address: royalty,
    abi: modelRegistryAbi,
    functionName: "royaltyOf",
    args: [bid.modelId],
  });
  const provider = providerOfBid(candidate.bidId);
  await verifyApproval(response, {
    domain: ctx.domain,
    bidId: candidate.bidId,
    user: requireWallet(ctx).account.address,
    provider,
    operator,
    deposit: params.deposit,
    maxDuration: params.maxDuration,
    shownPrices: candidate.shownPrices,
    bidPrices: {
      perSecond: bid.pricePerSecond,
      perInputToken: bid.pricePerInputToken,
      perOutputToken: bid.pricePerOutputToken,
    },
    royaltyBps,
    feeBps,
    now,
    minValiditySeconds: ctx.settings.minApprovalValiditySeconds,
    nonceUsed: (nonce) =>
      ctx.publicClient.readContract({
        address: ctx.addresses.sessionRouter,
        abi: sessionRouterAbi,
        functionName: "isApprovalNonceUsed",
        args: [provider, nonce],
      }),
  });
}

/** Whether the token takes ERC-2612 permits (it has `nonces`); a plain ERC-20 needs `approve` first. */
async function permitNonce(ctx: MarketContext, owner: Address): Promise<bigint | undefined> {
  try {
    return await ctx.publicClient.readContract({
      address: ctx.addresses.token,
      abi: marketTokenAbi,
      functionName: "nonces",
      args: [owner],
    });
  } catch {
    return undefined;
  }
}

async function openWithApproval(
  ctx: MarketContext,
  candidate: Candidate,
  response: ApprovalResponse,
  endpoint: string,
  params: OpenSessionParams,
): Promise<{ session: MarketSession; txHash: Hex }> {
  const store = requireStore(ctx);
  const wallet = requireWallet(ctx);
  const user = wallet.account.address;
  const { approval } = response;

  // The session key exists on disk, sealed, before anything can use it on chain.
  const sessionPrivateKey = generatePrivateKey();
  const sessionKey = privateKeyToAccount(sessionPrivateKey).address;
  const fromBlock = await ctx.publicClient.getBlockNumber();
  const record: SessionRecord = {
    version: SESSION_RECORD_VERSION,
    chainId: ctx.chainId,
    sessionRouter: ctx.addresses.sessionRouter,
    user,
    sessionKey: await store.sealSessionKey(sessionPrivateKey),
    bidId: candidate.bidId,
    provider: response.provider,
    modelId: response.modelId,
    endpoint,
    prices: pricesToJson(candidate.shownPrices),
    approval: approvalToJson(approval),
    approvalSignature: response.signature,
    createdAt: Date.now(),
    fromBlock: fromBlock.toString(),
    phase: "opening",
    deposit: params.deposit.toString(),
    receipts: {
      acknowledgedSeq: "0",
      statistics: { ttftSamples: 0, ttftMsTotal: 0, tpsSamples: 0, tpsX1000Total: 0 },
    },
  };
  await store.create(record);

  const nonce = await permitNonce(ctx, user);
  const label = `opening a session with ${formatAmount(params.deposit, ctx.token)} on bid ${candidate.bidId}`;
  const onSent = async (hash: Hex) => {
    await store.update(sessionKey, (current) => ({ ...current, openTxHash: hash }));
  };
  let receipt;
  try {
    if (nonce === undefined) {
      await ensureAllowance(ctx, ctx.addresses.sessionRouter, params.deposit, "the deposit");
      receipt = await sendContractCall(
        ctx,
        ctx.progress,
        label,
        {
          address: ctx.addresses.sessionRouter,
          abi: sessionRouterAbi,
          functionName: "openSession",
          args: [approval, response.signature, params.deposit, candidate.shownPrices, sessionKey],
        },
        { onSent },
      );
    } else {
      const permit = {
        owner: user,
        spender: ctx.addresses.sessionRouter,
        value: params.deposit,
        nonce,
        deadline: approval.deadline,
      };
      const signature = await wallet.account.signTypedData({
        domain: permitDomain(ctx.token.name, ctx.chainId, ctx.addresses.token),
        types: permitTypes,
        primaryType: "Permit",
        message: permit,
      });
      const { r, s, v, yParity } = parseSignature(signature);
      receipt = await sendContractCall(
        ctx,
        ctx.progress,
        label,
        {
          address: ctx.addresses.sessionRouter,
          abi: sessionRouterAbi,
          functionName: "openSessionWithPermit",
          args: [
            approval,
            response.signature,
            params.deposit,
            candidate.shownPrices,
            sessionKey,
            approval.deadline,
            Number(v ?? BigInt(yParity + 27)),
            r,
            s,
          ],
        },
        { onSent },
      );
    }
  } catch (error) {
    const sent = (await store.get(sessionKey))?.openTxHash !== undefined;
    const reason = decodeRevert(error)?.errorName ?? (error as Error).message;
    if (!sent) await store.update(sessionKey, (current) => ({ ...current, phase: "failed", failure: reason }));
    throw error;
  }

  const [opened] = parseEventLogs({ abi: sessionRouterAbi, logs: receipt.logs, eventName: "SessionOpened" });
  if (!opened) throw new Error(`the open transaction ${receipt.transactionHash} has no SessionOpened event`);
  const saved = await store.update(sessionKey, (current) => ({
    ...current,
    phase: "open",
    sessionId: opened.args.sessionId,
    terms: termsToJson(opened.args.terms),
    deposit: opened.args.deposit.toString(),
    endsAt: opened.args.endsAt,
  }));
  return { session: sessionFromRecord(saved), txHash: receipt.transactionHash };
}
