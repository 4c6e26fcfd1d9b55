/** A session as the SDK hands it out: its id, terms and where to reach its provider. */
import type { Address, Hex } from "viem";
import type { SessionTerms } from "../../../protocol/index.js";
import { SessionStateError } from "../errors.js";
import { type SessionPhase, type SessionRecord, termsFromJson } from "../store/session-record.js";

export interface MarketSession {
  id: Hex;
  /** The EOA that signs this session's receipts and bearer tokens (kept, encrypted, in the store). */
  sessionKey: Address;
  user: Address;
  provider: Address;
  bidId: Hex;
  modelId: Hex;
  /** The provider agent's base URL. */
  endpoint: string;
  terms: SessionTerms;
  deposit: bigint;
  /** Unix seconds. */
  endsAt: number;
  phase: SessionPhase;
}

export function sessionFromRecord(record: SessionRecord): MarketSession {
  if (record.sessionId === undefined || record.terms === undefined || record.endsAt === undefined) {
    throw new SessionStateError(`the session of key ${record.sessionKey.address} is ${record.phase}, not open`, {
      hint: "run `market sessions` to resume opens that were interrupted",
    });
  }
  return {
    id: record.sessionId,
    sessionKey: record.sessionKey.address,
    user: record.user,
    provider: record.provider,
    bidId: record.bidId,
    modelId: record.modelId,
    endpoint: record.endpoint,
    terms: termsFromJson(record.terms),
    deposit: BigInt(record.deposit),
    endsAt: record.endsAt,
    phase: record.phase,
  };
}

/** Where an action accepts a session: the handle, or its id. */
export type SessionRef = MarketSession | Hex;

export function sessionIdOfRef(ref: SessionRef): Hex {
  return typeof ref === "string" ? ref : ref.id;
}
