/**
 * One session as the local store keeps it: a JSON file per session key (a fresh key per session,
 * so the file exists before the session does — it is written before the open transaction is sent).
 * Amounts are decimal strings, addresses and hashes 0x-hex; `parseSessionRecord` checks all of it.
 */
import { type Address, type Hex, getAddress } from "viem";
import { z } from "zod";
import type { SessionTerms } from "../../../protocol/index.js";

export const SESSION_RECORD_VERSION = 1;

const hex = z.string().regex(/^0x[0-9a-fA-F]*$/, "expected 0x-hex") as unknown as z.ZodType<Hex>;
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, "expected 32 bytes of 0x-hex") as unknown as z.ZodType<Hex>;
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, "expected an address")
  .transform((value) => getAddress(value)) as unknown as z.ZodType<Address>;
const uint = z.string().regex(/^(0|[1-9][0-9]*)$/, "expected a decimal unsigned integer");
const smallUint = z.number().int().nonnegative();

const sealedBox = z.object({ iv: z.string(), ciphertext: z.string(), tag: z.string() });

const pricesJson = z.object({ perSecond: uint, perInputToken: uint, perOutputToken: uint });

const approvalJson = z.object({
  bidId: bytes32,
  user: address,
  maxDeposit: uint,
  maxDuration: uint,
  deadline: uint,
  nonce: uint,
  maxRoyaltyBps: smallUint,
  maxFeeBps: smallUint,
});

const termsJson = z.object({
  user: address,
  sessionKey: address,
  provider: address,
  modelId: bytes32,
  nonce: uint,
  pricePerSecond: uint,
  pricePerInputToken: uint,
  pricePerOutputToken: uint,
  royaltyRecipient: address,
  royaltyBps: smallUint,
  feeBps: smallUint,
  challengeWindow: smallUint,
  maxDeposit: uint,
  openedAt: smallUint,
  maxEndsAt: smallUint,
});

const receiptJson = z.object({
  sessionId: bytes32,
  seq: uint,
  inputTokens: uint,
  outputTokens: uint,
  requests: smallUint,
  ttftMsAvg: smallUint,
  tpsX1000Avg: smallUint,
});

const signedReceiptJson = z.object({ receipt: receiptJson, signature: hex });

/** Sums behind the averages a receipt carries (so the next receipt's averages include this response). */
const receiptStatistics = z.object({
  ttftSamples: smallUint,
  ttftMsTotal: smallUint,
  tpsSamples: smallUint,
  tpsX1000Total: smallUint,
});

export const SESSION_PHASES = ["opening", "open", "closing", "settled", "failed"] as const;
export type SessionPhase = (typeof SESSION_PHASES)[number];

export const sessionRecordSchema = z.object({
  version: z.literal(SESSION_RECORD_VERSION),
  chainId: smallUint,
  sessionRouter: address,
  user: address,
  /** `sealed` is absent when the record was rebuilt without the key (the store was lost). */
  sessionKey: z.object({ address, sealed: sealedBox.optional() }),
  bidId: bytes32,
  provider: address,
  modelId: bytes32,
  endpoint: z.string(),
  /** The prices the user was shown and passed as `maxPrices`. */
  prices: pricesJson,
  approval: approvalJson.optional(),
  approvalSignature: hex.optional(),
  /** Unix milliseconds. */
  createdAt: smallUint,
  /** The block before the open was sent: where a lost open is looked for. */
  fromBlock: uint,
  openTxHash: bytes32.optional(),
  phase: z.enum(SESSION_PHASES),
  sessionId: bytes32.optional(),
  terms: termsJson.optional(),
  /** The latest deposit and end known from the chain. */
  deposit: uint,
  endsAt: smallUint.optional(),
  receipts: z.object({
    latest: signedReceiptJson.optional(),
    /** The highest `seq` the agent acknowledged (0: none). */
    acknowledgedSeq: uint,
    statistics: receiptStatistics,
  }),
  close: z
    .object({
      receipt: receiptJson,
      userSignature: hex,
      providerSignature: hex.optional(),
      txHash: bytes32.optional(),
      closedAt: smallUint.optional(),
      challengeEndsAt: smallUint.optional(),
    })
    .optional(),
  settlement: z
    .object({
      cost: uint,
      refund: uint,
      providerAmount: uint,
      royaltyAmount: uint,
      feeAmount: uint,
      challenged: z.boolean(),
      closedBy: address,
      txHash: bytes32.optional(),
    })
    .optional(),
  /** Why an `opening` record never became a session. */
  failure: z.string().optional(),
});

export type SessionRecord = z.infer<typeof sessionRecordSchema>;
export type SessionTermsJson = z.infer<typeof termsJson>;

export function parseSessionRecord(value: unknown): SessionRecord {
  return sessionRecordSchema.parse(value);
}

export function termsToJson(terms: SessionTerms): SessionTermsJson {
  return {
    ...terms,
    nonce: terms.nonce.toString(),
    pricePerSecond: terms.pricePerSecond.toString(),
    pricePerInputToken: terms.pricePerInputToken.toString(),
    pricePerOutputToken: terms.pricePerOutputToken.toString(),
    maxDeposit: terms.maxDeposit.toString(),
  };
}

export function termsFromJson(json: SessionTermsJson): SessionTerms {
  return {
    ...json,
    nonce: BigInt(json.nonce),
    pricePerSecond: BigInt(json.pricePerSecond),
    pricePerInputToken: BigInt(json.pricePerInputToken),
    pricePerOutputToken: BigInt(json.pricePerOutputToken),
    maxDeposit: BigInt(json.maxDeposit),
  };
}
