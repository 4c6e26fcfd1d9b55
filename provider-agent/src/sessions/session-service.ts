/**
 * The sessions as the HTTP layer sees them: who may be served (bearer token → open session of ours,
 * signed by its key, unexpired), how much (the credit rule), and the receipts and final
 * countersignature that settle it. Everything refused is a `Refusal` with its code.
 */
import type { Address, Hex, LocalAccount } from "viem";
import {
  AgentWireFormatError,
  type MarketDomain,
  type SessionStatusBody,
  type SessionUsageJson,
  type SignedUsageReceipt,
  parseAuthToken,
  pricesToJson,
  signUsageReceipt,
  signedReceiptToJson,
  usageCost,
  verifySessionAuth,
} from "../../../protocol/index.js";
import { Refusal } from "../refusal.js";
import { affordableOutputTokens, creditPosition, promptAffordable } from "./credit.js";
import { checkNewReceipt, checkReceiptSignature, checkReceiptWithinServed, sameReceipt } from "./receipts.js";
import { RequestMeter } from "./request-meter.js";
import type { ChainSession, SessionAccount } from "./session-account.js";
import type { SessionBook } from "./session-book.js";

/** Finds a session on chain that the agent has not seen yet (its `SessionOpened` log and state). */
export type SessionLookup = (sessionId: Hex) => Promise<ChainSession | undefined>;

export interface SessionServiceOptions {
  book: SessionBook;
  lookup: SessionLookup;
  domain: MarketDomain;
  provider: Address;
  /** Signs countersignatures: the operator key, else the provider key. */
  signer: LocalAccount;
  creditLimit: bigint;
  maxAuthLifetimeSeconds: number;
  /** Chain time, unix seconds. */
  now: () => number;
}

const VERIFIED_TOKENS_KEPT = 10_000;

export class SessionService {
  /** Bearer tokens whose signature was checked, so a session's requests pay for one recovery. */
  private readonly verifiedTokens = new Map<string, Hex>();
  private readonly lookups = new Map<Hex, Promise<ChainSession | undefined>>();
  /** Requests in flight per session, to stop them when the session is countersigned or closes. */
  private readonly inFlight = new Map<Hex, Set<AbortController>>();

  constructor(private readonly options: SessionServiceOptions) {}

  get book(): SessionBook {
    return this.options.book;
  }

  get creditLimit(): bigint {
    return this.options.creditLimit;
  }

  /** Who countersigns: the operator, else the provider. */
  get signerAddress(): Address {
    return this.options.signer.address;
  }

  /** The session by id: known, or looked up on chain (one lookup per id at a time). */
  async resolve(sessionId: Hex): Promise<SessionAccount | undefined> {
    const known = this.options.book.get(sessionId);
    if (known) return known;
    const id = sessionId.toLowerCase() as Hex;
    let pending = this.lookups.get(id);
    if (!pending) {
      pending = this.options.lookup(id).finally(() => this.lookups.delete(id));
      this.lookups.set(id, pending);
    }
    const found = await pending;
    if (!found) return undefined;
    return this.options.book.get(id) ?? this.options.book.upsertChain(found);
  }

  private async resolveOurs(sessionId: Hex): Promise<SessionAccount> {
    const account = await this.resolve(sessionId);
    if (!account) throw new Refusal("session_not_found", `no session ${sessionId} on chain`);
    if (account.terms.provider.toLowerCase() !== this.options.provider.toLowerCase()) {
      throw new Refusal("not_this_provider", `session ${sessionId} belongs to provider ${account.terms.provider}`);
    }
    return account;
  }

  /**
   * The session an `Authorization: Bearer` header names, checked: token well formed and unexpired,
   * session ours on chain, token signed by the session's key. `servable` also requires the session
   * open, not countersigned and not past its end.
   */
  async authenticate(authorization: string | undefined, servable = true): Promise<SessionAccount> {
    const match = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) {
      throw new Refusal("auth_required", "send Authorization: Bearer <sessionId>.<expiresAt>.<signature>");
    }
    const token = match[1];
    let parsed;
    try {
      parsed = parseAuthToken(token);
    } catch (error) {
      if (error instanceof AgentWireFormatError) throw new Refusal("auth_required", error.message);
      throw error;
    }
    const now = this.options.now();
    const { auth, signature } = parsed;
    if (auth.expiresAt <= BigInt(Math.floor(now))) {
      throw new Refusal("auth_expired", `the token expired at ${auth.expiresAt} (now ${Math.floor(now)})`);
    }
    if (auth.expiresAt > BigInt(Math.floor(now) + this.options.maxAuthLifetimeSeconds)) {
      throw new Refusal(
        "auth_expired",
        `the token's expiresAt lies more than ${this.options.maxAuthLifetimeSeconds} s ahead; sign a shorter one`,
      );
    }
    const account = await this.resolveOurs(auth.sessionId);
    if (this.verifiedTokens.get(token) !== account.id) {
      if (!(await verifySessionAuth(this.options.domain, auth, signature, account.terms.sessionKey))) {
        throw new Refusal("bad_signature", `the token is not signed by the session key ${account.terms.sessionKey}`);
      }
      if (this.verifiedTokens.size >= VERIFIED_TOKENS_KEPT) this.verifiedTokens.clear();
      this.verifiedTokens.set(token, account.id);
    }
    if (servable) this.assertServable(account);
    return account;
  }

  /** Refuses a session that is closing, settled, countersigned or past its end. */
  assertServable(account: SessionAccount): void {
    if (account.chain.phase !== "open") {
      throw new Refusal("session_closed", `session ${account.id} is ${account.chain.phase}`);
    }
    if (account.local.countersigned) {
      throw new Refusal(
        "session_closed",
        `session ${account.id} is being closed (the agent countersigned its receipt)`,
      );
    }
    if (this.options.now() >= account.chain.endsAt) {
      throw new Refusal("session_expired", `session ${account.id} ended at ${account.chain.endsAt}`);
    }
  }

  /**
   * Admits a request of `promptTokens` to `account` under the credit rule and returns its meter.
   * `maxTokens` is lowered to what the deposit and credit pay for; a request that cannot pay for its
   * prompt and one output token is refused (`deposit_exhausted` or `receipt_required`).
   */
  admit(account: SessionAccount, promptTokens: number, maxTokens: number): RequestMeter {
    this.assertServable(account);
    const position = this.position(account);
    const refuse = () =>
      position.limitedBy === "deposit"
        ? new Refusal(
            "deposit_exhausted",
            `session ${account.id}: the deposit left (${position.depositLeft}) does not pay for this request`,
          )
        : new Refusal(
            "receipt_required",
            `session ${account.id}: ${this.options.creditLimit} served past the last receipt; sign and send a receipt`,
          );
    if (!promptAffordable(account.terms, position.budget, promptTokens)) throw refuse();
    const affordable = affordableOutputTokens(account.terms, position.budget, promptTokens);
    const cap = affordable === undefined ? maxTokens : Math.min(maxTokens, affordable);
    if (cap < 1) throw refuse();
    return new RequestMeter(account, promptTokens, cap);
  }

  /** Ends a request's accounting and journals the session's served totals. */
  async finish(meter: RequestMeter): Promise<void> {
    meter.finish();
    await this.options.book.recordServed(meter.account);
  }

  /** Registers a request's abort controller, so closing the session stops it; returns the unregister. */
  track(account: SessionAccount, controller: AbortController): () => void {
    let set = this.inFlight.get(account.id);
    if (!set) {
      set = new Set();
      this.inFlight.set(account.id, set);
    }
    set.add(controller);
    return () => {
      set.delete(controller);
      if (set.size === 0) this.inFlight.delete(account.id);
    };
  }

  /** Stops every request in flight for a session (countersigned, closing or settled). */
  stopRequests(sessionId: Hex, reason: string): void {
    for (const controller of this.inFlight.get(sessionId.toLowerCase() as Hex) ?? []) controller.abort(reason);
  }

  private position(account: SessionAccount) {
    return creditPosition({
      terms: account.terms,
      deposit: account.chain.deposit,
      endsAt: account.chain.endsAt,
      now: this.options.now(),
      served: account.servedNow(),
      reservedCost: account.reservedCost,
      receipted: account.receiptedUsage(),
      creditLimit: this.options.creditLimit,
    });
  }

  /** Checks and journals a receipt for `sessionId` (from its route or the receipt header). */
  async submitReceipt(sessionId: Hex, signed: SignedUsageReceipt, param = "receipt"): Promise<SessionAccount> {
    const account = await this.resolveOurs(sessionId);
    await account.exclusive(async () => {
      await checkNewReceipt(this.options.domain, account, signed, param);
      await this.options.book.acceptReceipt(account, signed);
    });
    return account;
  }

  /**
   * The agent's countersignature of the user's final receipt, so the user's close settles at once.
   * Given when the receipt charges at least as much as the best one held; journaled before it is
   * returned; from then on the session is served no more. Asking again returns the same signature.
   */
  async countersign(sessionId: Hex, signed: SignedUsageReceipt) {
    const account = await this.resolveOurs(sessionId);
    return account.exclusive(async () => {
      await checkReceiptSignature(this.options.domain, account, signed);
      const done = account.local.countersigned;
      if (done) {
        if (sameReceipt({ receipt: done.receipt, signature: done.userSignature }, signed)) {
          return { account, providerSignature: done.providerSignature };
        }
        throw new Refusal("session_closed", `session ${account.id}: the agent already countersigned another receipt`);
      }
      if (account.chain.phase !== "open") {
        throw new Refusal("session_closed", `session ${account.id} is ${account.chain.phase}`);
      }
      const best = account.local.best;
      const isBest = best !== undefined && sameReceipt(best, signed);
      if (!isBest) {
        if (signed.receipt.seq <= account.lastSeq) {
          throw new Refusal(
            "receipt_stale",
            `receipt seq ${signed.receipt.seq} is not above the last accepted (${account.lastSeq})`,
            { param: "receipt.seq" },
          );
        }
        checkReceiptWithinServed(account, signed);
      }
      const bestCost = best ? usageCost(account.terms, best.receipt) : 0n;
      const finalCost = usageCost(account.terms, signed.receipt);
      if (finalCost < bestCost) {
        throw new Refusal(
          "receipt_below_best",
          `the receipt's tokens cost ${finalCost}; the best receipt held (seq ${best?.receipt.seq}) costs ${bestCost}`,
          { param: "receipt" },
        );
      }
      const providerSignature = await signUsageReceipt(this.options.signer, this.options.domain, signed.receipt);
      if (!isBest) await this.options.book.acceptReceipt(account, signed);
      await this.options.book.recordCountersigned(account, signed, providerSignature);
      this.stopRequests(account.id, "the session is closing");
      return { account, providerSignature };
    });
  }

  usage(account: SessionAccount): SessionUsageJson {
    const position = this.position(account);
    const served = account.servedNow();
    return {
      served: {
        inputTokens: served.inputTokens.toString(),
        outputTokens: served.outputTokens.toString(),
        requests: served.requests,
      },
      cost: position.cost.toString(),
      receiptCost: position.receiptCost.toString(),
      creditLeft: position.creditLeft.toString(),
      depositLeft: position.depositLeft.toString(),
    };
  }

  status(account: SessionAccount): SessionStatusBody {
    const { terms, chain } = account;
    return {
      sessionId: account.id,
      status: account.local.countersigned && chain.phase === "open" ? "countersigned" : chain.phase,
      user: terms.user,
      sessionKey: terms.sessionKey,
      provider: terms.provider,
      modelId: terms.modelId,
      prices: pricesToJson({
        perSecond: terms.pricePerSecond,
        perInputToken: terms.pricePerInputToken,
        perOutputToken: terms.pricePerOutputToken,
      }),
      deposit: chain.deposit.toString(),
      openedAt: terms.openedAt,
      endsAt: chain.endsAt,
      usage: this.usage(account),
      bestReceipt: account.local.best ? signedReceiptToJson(account.local.best) : null,
    };
  }
}
