/**
 * The provider agent's HTTP wire formats, shared by the agent (which parses them) and the consumer
 * client (which builds them): the bearer token that carries a signed `SessionAuth`, the header
 * that carries a signed `UsageReceipt` on the next request, the JSON bodies of the agent's own
 * routes (approvals, receipts, close, session status) and its error codes.
 *
 * JSON has no bigint: every uint256/uint64 amount travels as a decimal string, addresses and
 * hashes as 0x-hex, small integers (bps, seconds, uint32 statistics) as JSON numbers.
 *
 * viem only, no ESM-only dependency: the CommonJS Hardhat tests import this file too.
 */
import { type Address, type Hex, getAddress, isAddress, isHex } from "viem";
import {
  type MarketDomain,
  type SessionApproval,
  type SessionAuth,
  type TypedDataSigner,
  type UsageReceipt,
  signSessionAuth,
  signUsageReceipt,
} from "./eip712";
import type { Prices } from "./session";

/* ERRORS */

/**
 * Every refusal of the agent, with its HTTP status. The body is OpenAI's error shape
 * (`AgentErrorBody`), so the `openai` SDK raises an `APIError` whose `code` is one of these.
 */
export const AGENT_ERROR_STATUS = {
  /** The body is not JSON, misses a field or has one of the wrong shape. */
  invalid_request: 400,
  /** The body is larger than the agent accepts. */
  body_too_large: 413,
  /** No `Authorization: Bearer <token>` header, or a token that is not `<sessionId>.<expiresAt>.<signature>`. */
  auth_required: 401,
  /** A token or receipt whose signature is not by the session's key (or not a signature at all). */
  bad_signature: 401,
  /** The token's `expiresAt` has passed (or lies further ahead than the agent accepts). */
  auth_expired: 401,
  /** No open session with this id on chain. */
  session_not_found: 404,
  /** The session is closing or settled, or its user took the agent's countersignature to close it. */
  session_closed: 410,
  /** The session ran past its `endsAt`. */
  session_expired: 410,
  /** The session, bid or approval belongs to another provider. */
  not_this_provider: 403,
  /** The session's deposit cannot pay for any more of this request. */
  deposit_exhausted: 402,
  /** The agent has served `creditLimit` past the best receipt it holds: sign and send a receipt. */
  receipt_required: 402,
  /** A receipt that claims more tokens or requests than were served. */
  receipt_exceeds_usage: 409,
  /** A receipt whose `seq` is not above the last one the agent accepted. */
  receipt_stale: 409,
  /** A final receipt (close) that charges less than the best receipt the agent holds. */
  receipt_below_best: 409,
  /** A receipt for another session, or with fields out of range. */
  invalid_receipt: 400,
  /** Too many requests from this address or for this session; see `Retry-After`. */
  rate_limited: 429,
  /** Every sequence of the model is busy and its queue is full; see `Retry-After`. */
  queue_full: 429,
  /** The model is not served by this agent. */
  model_not_found: 404,
  /** The model is served here, but the session is for another model. */
  model_not_in_session: 400,
  /** The prompt takes more tokens than the model's context accepts. */
  prompt_too_long: 400,
  /** `max_tokens` above what the agent serves per request for this model. */
  max_tokens_too_large: 400,
  /** The bid does not exist or is not active. */
  bid_not_active: 409,
  /** The approval's deposit is above the agent's per-session cap. */
  deposit_too_large: 400,
  /** The approval's duration is above the agent's (or the market's) longest session. */
  duration_too_long: 400,
  /** The agent has as many sessions (open and approved) as it takes. */
  capacity_exceeded: 503,
  /** The agent is starting (models loading, chain syncing) or shutting down. */
  not_ready: 503,
  /** The inference backend failed or cannot serve now. */
  backend_unavailable: 503,
  /** No such route (method and path). */
  route_not_found: 404,
  /** A bug or an unexpected failure; the message says what. */
  internal_error: 500,
} as const;

export type AgentErrorCode = keyof typeof AGENT_ERROR_STATUS;

/** OpenAI's error `type` for each status class, so SDKs and tools classify agent errors as theirs. */
export function agentErrorType(status: number): string {
  if (status === 401) return "authentication_error";
  if (status === 402) return "insufficient_quota";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 409 || status === 410) return "conflict_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "server_error";
  return "invalid_request_error";
}

export interface AgentErrorBody {
  error: {
    message: string;
    type: string;
    code: AgentErrorCode;
    /** The request field at fault, where there is one (`max_tokens`, `messages`, `bidId`…). */
    param: string | null;
  };
}

export function isAgentErrorCode(value: unknown): value is AgentErrorCode {
  return typeof value === "string" && Object.hasOwn(AGENT_ERROR_STATUS, value);
}

/** Thrown by the parsers below: what was malformed, and where. */
export class AgentWireFormatError extends Error {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(`${field}: ${detail}`);
    this.name = "AgentWireFormatError";
  }
}

/* SCALARS */

const UINT_PATTERN = /^(0|[1-9][0-9]*)$/;
const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_UINT256 = (1n << 256n) - 1n;

function parseUint(field: string, value: unknown, max: bigint): bigint {
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  if (typeof value !== "string" || !UINT_PATTERN.test(value)) {
    throw new AgentWireFormatError(field, "expected an unsigned integer as a decimal string");
  }
  const parsed = BigInt(value);
  if (parsed > max) throw new AgentWireFormatError(field, `above ${max}`);
  return parsed;
}

function parseSmallUint(field: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max) {
    throw new AgentWireFormatError(field, `expected an integer from 0 to ${max}`);
  }
  return value;
}

function parseBytes32(field: string, value: unknown): Hex {
  if (typeof value !== "string" || !isHex(value, { strict: true }) || value.length !== 66) {
    throw new AgentWireFormatError(field, "expected 32 bytes as 0x-prefixed hex");
  }
  return value.toLowerCase() as Hex;
}

function parseAddress(field: string, value: unknown): Address {
  if (typeof value !== "string" || !isAddress(value, { strict: false })) {
    throw new AgentWireFormatError(field, "expected an address (0x and 40 hex digits)");
  }
  return getAddress(value);
}

/** An ECDSA signature: 65 bytes (r, s, v) or 64 (EIP-2098 compact). */
function parseSignature(field: string, value: unknown): Hex {
  if (typeof value !== "string" || !isHex(value, { strict: true }) || (value.length !== 132 && value.length !== 130)) {
    throw new AgentWireFormatError(field, "expected a 65-byte signature as 0x-prefixed hex");
  }
  return value;
}

function asObject(field: string, value: unknown): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new AgentWireFormatError(field, "expected a JSON object");
  }
  return value as Record<string, unknown>;
}

/* BEARER TOKEN */

/** How far ahead a token's `expiresAt` may lie by default (the agent may be configured otherwise). */
export const DEFAULT_MAX_AUTH_LIFETIME_SECONDS = 86_400;

export interface SignedSessionAuth {
  auth: SessionAuth;
  signature: Hex;
}

/**
 * The bearer token: `<sessionId>.<expiresAt>.<signature>` — the session id as 0x-hex, the expiry as
 * decimal unix seconds, the session key's EIP-712 signature of `SessionAuth(sessionId, expiresAt)`.
 * Sent as `Authorization: Bearer <token>` (the `openai` SDK's `apiKey`).
 */
export function encodeAuthToken({ auth, signature }: SignedSessionAuth): string {
  return `${auth.sessionId.toLowerCase()}.${auth.expiresAt}.${signature}`;
}

export function parseAuthToken(token: string): SignedSessionAuth {
  const parts = token.trim().split(".");
  if (parts.length !== 3) {
    throw new AgentWireFormatError("authorization", "expected a token <sessionId>.<expiresAt>.<signature>");
  }
  const [sessionId, expiresAt, signature] = parts as [string, string, string];
  return {
    auth: {
      sessionId: parseBytes32("authorization.sessionId", sessionId),
      expiresAt: parseUint("authorization.expiresAt", expiresAt, MAX_UINT64),
    },
    signature: parseSignature("authorization.signature", signature),
  };
}

/** Signs `SessionAuth(sessionId, expiresAt)` with the session key and encodes it as a bearer token. */
export async function createAuthToken(
  sessionKey: TypedDataSigner,
  domain: MarketDomain,
  sessionId: Hex,
  expiresAt: bigint,
): Promise<string> {
  const auth = { sessionId, expiresAt };
  return encodeAuthToken({ auth, signature: await signSessionAuth(sessionKey, domain, auth) });
}

/* RECEIPTS */

/**
 * The header that carries a signed receipt on the next inference request (instead of a separate
 * `POST /v1/sessions/:id/receipts`). The agent checks and journals it before it serves the request;
 * a bad receipt refuses the request with the receipt's error code.
 */
export const RECEIPT_HEADER = "x-usage-receipt";

export interface SignedUsageReceipt {
  receipt: UsageReceipt;
  /** The session key's EIP-712 signature of the receipt. */
  signature: Hex;
}

/**
 * `<sessionId>.<seq>.<inputTokens>.<outputTokens>.<requests>.<ttftMsAvg>.<tpsX1000Avg>.<signature>`:
 * the receipt's fields in their EIP-712 order, decimal, then the signature.
 */
export function encodeReceiptHeader({ receipt, signature }: SignedUsageReceipt): string {
  return [
    receipt.sessionId.toLowerCase(),
    receipt.seq,
    receipt.inputTokens,
    receipt.outputTokens,
    receipt.requests,
    receipt.ttftMsAvg,
    receipt.tpsX1000Avg,
    signature,
  ].join(".");
}

export function parseReceiptHeader(value: string): SignedUsageReceipt {
  const parts = value.trim().split(".");
  if (parts.length !== 8) {
    throw new AgentWireFormatError(
      RECEIPT_HEADER,
      "expected <sessionId>.<seq>.<inputTokens>.<outputTokens>.<requests>.<ttftMsAvg>.<tpsX1000Avg>.<signature>",
    );
  }
  const [sessionId, seq, inputTokens, outputTokens, requests, ttft, tps, signature] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const uint32 = (field: string, text: string) => Number(parseUint(`${RECEIPT_HEADER}.${field}`, text, 0xffffffffn));
  return {
    receipt: {
      sessionId: parseBytes32(`${RECEIPT_HEADER}.sessionId`, sessionId),
      seq: parseUint(`${RECEIPT_HEADER}.seq`, seq, MAX_UINT64),
      inputTokens: parseUint(`${RECEIPT_HEADER}.inputTokens`, inputTokens, MAX_UINT64),
      outputTokens: parseUint(`${RECEIPT_HEADER}.outputTokens`, outputTokens, MAX_UINT64),
      requests: uint32("requests", requests),
      ttftMsAvg: uint32("ttftMsAvg", ttft),
      tpsX1000Avg: uint32("tpsX1000Avg", tps),
    },
    signature: parseSignature(`${RECEIPT_HEADER}.signature`, signature),
  };
}

/** Signs a receipt with the session key, ready for `encodeReceiptHeader` or `ReceiptRequestBody`. */
export async function signReceipt(
  sessionKey: TypedDataSigner,
  domain: MarketDomain,
  receipt: UsageReceipt,
): Promise<SignedUsageReceipt> {
  return { receipt, signature: await signUsageReceipt(sessionKey, domain, receipt) };
}

/** A `UsageReceipt` in JSON. */
export interface UsageReceiptJson {
  sessionId: Hex;
  seq: string;
  inputTokens: string;
  outputTokens: string;
  requests: number;
  ttftMsAvg: number;
  tpsX1000Avg: number;
}

export function receiptToJson(receipt: UsageReceipt): UsageReceiptJson {
  return {
    sessionId: receipt.sessionId,
    seq: receipt.seq.toString(),
    inputTokens: receipt.inputTokens.toString(),
    outputTokens: receipt.outputTokens.toString(),
    requests: receipt.requests,
    ttftMsAvg: receipt.ttftMsAvg,
    tpsX1000Avg: receipt.tpsX1000Avg,
  };
}

export function receiptFromJson(value: unknown, field = "receipt"): UsageReceipt {
  const json = asObject(field, value);
  return {
    sessionId: parseBytes32(`${field}.sessionId`, json.sessionId),
    seq: parseUint(`${field}.seq`, json.seq, MAX_UINT64),
    inputTokens: parseUint(`${field}.inputTokens`, json.inputTokens, MAX_UINT64),
    outputTokens: parseUint(`${field}.outputTokens`, json.outputTokens, MAX_UINT64),
    requests: parseSmallUint(`${field}.requests`, json.requests, 0xffffffff),
    ttftMsAvg: parseSmallUint(`${field}.ttftMsAvg`, json.ttftMsAvg, 0xffffffff),
    tpsX1000Avg: parseSmallUint(`${field}.tpsX1000Avg`, json.tpsX1000Avg, 0xffffffff),
  };
}

export interface SignedUsageReceiptJson {
  receipt: UsageReceiptJson;
  signature: Hex;
}

export function signedReceiptToJson(signed: SignedUsageReceipt): SignedUsageReceiptJson {
  return { receipt: receiptToJson(signed.receipt), signature: signed.signature };
}

export function signedReceiptFromJson(value: unknown, field = "body"): SignedUsageReceipt {
  const json = asObject(field, value);
  return {
    receipt: receiptFromJson(json.receipt, `${field === "body" ? "" : `${field}.`}receipt`),
    signature: parseSignature(`${field === "body" ? "" : `${field}.`}signature`, json.signature),
  };
}

/* APPROVALS: POST /v1/sessions/approvals */

export interface ApprovalRequestBody {
  bidId: Hex;
  /** The account that will call `openSession` (an approval is useless to anyone else). */
  user: Address;
  /** The deposit the user means to lock, base units, decimal. */
  deposit: string;
  /** Seconds the session should last at most. */
  maxDuration: number;
}

export interface PricesJson {
  perSecond: string;
  perInputToken: string;
  perOutputToken: string;
}

export interface SessionApprovalJson {
  bidId: Hex;
  user: Address;
  maxDeposit: string;
  maxDuration: string;
  deadline: string;
  nonce: string;
  maxRoyaltyBps: number;
  maxFeeBps: number;
}

export interface ApprovalResponseBody {
  approval: SessionApprovalJson;
  /** The EIP-712 signature of `approval` by the provider or its operator (`signer`). */
  signature: Hex;
  signer: Address;
  provider: Address;
  modelId: Hex;
  /** The bid's prices now: pass them (or higher) to `openSession` as `maxPrices`. */
  prices: PricesJson;
  chainId: number;
  sessionRouter: Address;
}

export function pricesToJson(prices: Prices): PricesJson {
  return {
    perSecond: prices.perSecond.toString(),
    perInputToken: prices.perInputToken.toString(),
    perOutputToken: prices.perOutputToken.toString(),
  };
}

export function pricesFromJson(value: unknown, field = "prices"): Prices {
  const json = asObject(field, value);
  return {
    perSecond: parseUint(`${field}.perSecond`, json.perSecond, MAX_UINT256),
    perInputToken: parseUint(`${field}.perInputToken`, json.perInputToken, MAX_UINT256),
    perOutputToken: parseUint(`${field}.perOutputToken`, json.perOutputToken, MAX_UINT256),
  };
}

export function approvalToJson(approval: SessionApproval): SessionApprovalJson {
  return {
    bidId: approval.bidId,
    user: approval.user,
    maxDeposit: approval.maxDeposit.toString(),
    maxDuration: approval.maxDuration.toString(),
    deadline: approval.deadline.toString(),
    nonce: approval.nonce.toString(),
    maxRoyaltyBps: approval.maxRoyaltyBps,
    maxFeeBps: approval.maxFeeBps,
  };
}

/** The approval as `openSession` takes it. */
export function approvalFromJson(value: unknown, field = "approval"): SessionApproval {
  const json = asObject(field, value);
  return {
    bidId: parseBytes32(`${field}.bidId`, json.bidId),
    user: parseAddress(`${field}.user`, json.user),
    maxDeposit: parseUint(`${field}.maxDeposit`, json.maxDeposit, MAX_UINT256),
    maxDuration: parseUint(`${field}.maxDuration`, json.maxDuration, MAX_UINT64),
    deadline: parseUint(`${field}.deadline`, json.deadline, MAX_UINT64),
    nonce: parseUint(`${field}.nonce`, json.nonce, MAX_UINT256),
    maxRoyaltyBps: parseSmallUint(`${field}.maxRoyaltyBps`, json.maxRoyaltyBps, 0xffff),
    maxFeeBps: parseSmallUint(`${field}.maxFeeBps`, json.maxFeeBps, 0xffff),
  };
}

/** Reads an approval response (the client's side of `POST /v1/sessions/approvals`). */
export function parseApprovalResponse(value: unknown) {
  const json = asObject("body", value);
  return {
    approval: approvalFromJson(json.approval),
    signature: parseSignature("signature", json.signature),
    signer: parseAddress("signer", json.signer),
    provider: parseAddress("provider", json.provider),
    modelId: parseBytes32("modelId", json.modelId),
    prices: pricesFromJson(json.prices),
    chainId: parseSmallUint("chainId", json.chainId, Number.MAX_SAFE_INTEGER),
    sessionRouter: parseAddress("sessionRouter", json.sessionRouter),
  };
}

/* RECEIPTS AND CLOSE: POST /v1/sessions/:id/receipts, POST /v1/sessions/:id/close */

/** Body of both routes: a receipt signed by the session key. */
export type ReceiptRequestBody = SignedUsageReceiptJson;

export interface ReceiptResponseBody {
  sessionId: Hex;
  /** The receipt the agent now prices the session with (the one that charges most). */
  bestReceipt: SignedUsageReceiptJson;
  usage: SessionUsageJson;
}

export interface CloseResponseBody {
  sessionId: Hex;
  receipt: UsageReceiptJson;
  /** The session key's signature, as sent. */
  userSignature: Hex;
  /** The agent's countersignature of `receipt` (pass it to `closeSession` to settle at once). */
  providerSignature: Hex;
  /** Who countersigned: the provider or its operator. */
  signer: Address;
}

/* SESSION USAGE IN INFERENCE RESPONSES */

/**
 * The session's cumulative served usage after a request, added by the agent to OpenAI's response
 * (non-streaming: the `chat.completion` / `text_completion` object; streaming: the last chunk that
 * carries `usage`, i.e. with `stream_options.include_usage`) as `session_usage`. These are the totals
 * a client signs in its next `UsageReceipt` (never more than served, so the agent accepts them).
 */
export interface SessionUsageExtension {
  session_usage: {
    session_id: Hex;
    input_tokens: string;
    output_tokens: string;
    requests: number;
  };
}

/* SESSION STATUS: GET /v1/sessions/:id */

export interface SessionUsageJson {
  /** What the agent served (prompt and generated tokens, requests). */
  served: { inputTokens: string; outputTokens: string; requests: number };
  /** Cost so far: elapsed time priced plus served tokens, capped at the deposit (`sessionCost`). */
  cost: string;
  /** What the best receipt held (plus time) covers. */
  receiptCost: string;
  /** How much more the agent serves before it asks for a receipt. */
  creditLeft: string;
  /** Deposit minus cost so far. */
  depositLeft: string;
}

export type SessionStatusName = "open" | "closing" | "settled" | "countersigned";

export interface SessionStatusBody {
  sessionId: Hex;
  status: SessionStatusName;
  user: Address;
  sessionKey: Address;
  provider: Address;
  modelId: Hex;
  prices: PricesJson;
  deposit: string;
  openedAt: number;
  endsAt: number;
  usage: SessionUsageJson;
  bestReceipt: SignedUsageReceiptJson | null;
}
