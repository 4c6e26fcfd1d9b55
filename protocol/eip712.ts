/**
 * The EIP-712 typed data of Inference Market: the one definition of each signed struct, used by
 * the contracts' tests, the provider agent, the indexer and the client. The field lists mirror
 * `contracts/libraries/SessionLib.sol` (and `SessionAuth`, which only the agent verifies); a test
 * checks the type hashes against the contract's.
 *
 * Who signs what: a `SessionApproval` is signed by the provider or its operator (ECDSA, or ERC-1271
 * for a contract-wallet provider). A `UsageReceipt` and a `SessionAuth` are signed by the session's
 * key (`SessionTerms.sessionKey`, an EOA the user named at open) with plain ECDSA, never ERC-1271: the
 * router checks receipts exactly so, and an agent must check auth tokens the same way. The provider's
 * countersignature of a receipt is by the provider or its operator (ECDSA or ERC-1271).
 */
import {
  type Account,
  type Address,
  type Hex,
  type LocalAccount,
  type WalletClient,
  hashTypedData,
  recoverTypedDataAddress,
} from "viem";

export const EIP712_NAME = "InferenceMarket";
export const EIP712_VERSION = "1";

export const sessionTypes = {
  SessionApproval: [
    { name: "bidId", type: "bytes32" },
    { name: "user", type: "address" },
    { name: "maxDeposit", type: "uint256" },
    { name: "maxDuration", type: "uint64" },
    { name: "deadline", type: "uint64" },
    { name: "nonce", type: "uint256" },
    { name: "maxRoyaltyBps", type: "uint16" },
    { name: "maxFeeBps", type: "uint16" },
  ],
  SessionAuth: [
    { name: "sessionId", type: "bytes32" },
    { name: "expiresAt", type: "uint64" },
  ],
  UsageReceipt: [
    { name: "sessionId", type: "bytes32" },
    { name: "seq", type: "uint64" },
    { name: "inputTokens", type: "uint64" },
    { name: "outputTokens", type: "uint64" },
    { name: "requests", type: "uint32" },
    { name: "ttftMsAvg", type: "uint32" },
    { name: "tpsX1000Avg", type: "uint32" },
  ],
} as const;

export type SessionTypedDataName = keyof typeof sessionTypes;

/**
 * A provider's consent to one session. `maxRoyaltyBps` and `maxFeeBps` are the highest model royalty
 * (`ModelRegistry.royaltyOf`, the effective one) and protocol fee the provider accepts; the open
 * reverts (`RoyaltyAboveApproval`, `FeeAboveApproval`) if either is higher by then. An agent signs the
 * values it priced its bid with (the current ones, or a margin above them).
 */
export type SessionApproval = {
  bidId: Hex;
  user: Address;
  maxDeposit: bigint;
  maxDuration: bigint;
  deadline: bigint;
  nonce: bigint;
  maxRoyaltyBps: number;
  maxFeeBps: number;
};

export type SessionAuth = {
  sessionId: Hex;
  expiresAt: bigint;
};

export type UsageReceipt = {
  sessionId: Hex;
  seq: bigint;
  inputTokens: bigint;
  outputTokens: bigint;
  requests: number;
  ttftMsAvg: number;
  tpsX1000Avg: number;
};

interface MessageOf {
  SessionApproval: SessionApproval;
  SessionAuth: SessionAuth;
  UsageReceipt: UsageReceipt;
}

export interface MarketDomain {
  name: typeof EIP712_NAME;
  version: typeof EIP712_VERSION;
  chainId: number;
  verifyingContract: Address;
}

/** The domain every session signature is bound to: this chain and this `SessionRouter`. */
export function marketDomain(chainId: number | bigint, sessionRouter: Address): MarketDomain {
  return { name: EIP712_NAME, version: EIP712_VERSION, chainId: Number(chainId), verifyingContract: sessionRouter };
}

/** A receipt that says "no usage": `seq == 0` needs no signature and prices time only. */
export function emptyReceipt(sessionId: Hex): UsageReceipt {
  return { sessionId, seq: 0n, inputTokens: 0n, outputTokens: 0n, requests: 0, ttftMsAvg: 0, tpsX1000Avg: 0 };
}

function typedData<T extends SessionTypedDataName>(domain: MarketDomain, primaryType: T, message: MessageOf[T]) {
  return { domain, types: sessionTypes, primaryType, message } as const;
}

/** The EIP-712 digest that is signed. */
export function hashSessionTypedData<T extends SessionTypedDataName>(
  domain: MarketDomain,
  primaryType: T,
  message: MessageOf[T],
): Hex {
  // viem's generic typed-data signature cannot narrow a union of primary types; the call is checked above.
  return hashTypedData(typedData(domain, primaryType, message) as Parameters<typeof hashTypedData>[0]);
}

/** Something that signs typed data: a viem local account or a wallet client with an account. */
export type TypedDataSigner = LocalAccount | (WalletClient & { account: Account });

// A wallet client's `type` is "walletClient"; `in` cannot narrow it away, a type guard can.
function isLocalAccount(signer: TypedDataSigner): signer is LocalAccount {
  return signer.type === "local";
}

async function sign<T extends SessionTypedDataName>(
  signer: TypedDataSigner,
  domain: MarketDomain,
  primaryType: T,
  message: MessageOf[T],
): Promise<Hex> {
  const data = typedData(domain, primaryType, message) as Parameters<LocalAccount["signTypedData"]>[0];
  if (isLocalAccount(signer)) return signer.signTypedData(data);
  return signer.signTypedData({ ...data, account: signer.account });
}

/** Recovers the address that signed `message`; throws on a malformed signature. */
export async function recoverSessionSigner<T extends SessionTypedDataName>(
  domain: MarketDomain,
  primaryType: T,
  message: MessageOf[T],
  signature: Hex,
): Promise<Address> {
  const data = { ...typedData(domain, primaryType, message), signature };
  return recoverTypedDataAddress(data as Parameters<typeof recoverTypedDataAddress>[0]);
}

async function verify<T extends SessionTypedDataName>(
  domain: MarketDomain,
  primaryType: T,
  message: MessageOf[T],
  signature: Hex,
  expected: readonly Address[],
): Promise<boolean> {
  let signer: Address;
  try {
    signer = await recoverSessionSigner(domain, primaryType, message, signature);
  } catch {
    return false;
  }
  return expected.some((address) => address.toLowerCase() === signer.toLowerCase());
}

export const signSessionApproval = (signer: TypedDataSigner, domain: MarketDomain, approval: SessionApproval) =>
  sign(signer, domain, "SessionApproval", approval);
export const signSessionAuth = (signer: TypedDataSigner, domain: MarketDomain, auth: SessionAuth) =>
  sign(signer, domain, "SessionAuth", auth);
export const signUsageReceipt = (signer: TypedDataSigner, domain: MarketDomain, receipt: UsageReceipt) =>
  sign(signer, domain, "UsageReceipt", receipt);

/** True when `signature` over `approval` comes from one of `signers` (the provider or its operator). */
export const verifySessionApproval = (
  domain: MarketDomain,
  approval: SessionApproval,
  signature: Hex,
  signers: readonly Address[],
) => verify(domain, "SessionApproval", approval, signature, signers);
/** True when `signature` over `auth` comes from the session's key (`SessionTerms.sessionKey`), by plain ECDSA. */
export const verifySessionAuth = (domain: MarketDomain, auth: SessionAuth, signature: Hex, sessionKey: Address) =>
  verify(domain, "SessionAuth", auth, signature, [sessionKey]);
/**
 * True when `signature` over `receipt` comes from one of `signers`: the session's key for the user's
 * signature (as the router checks it), the provider or its operator for a countersignature (an
 * ERC-1271 countersignature, which the router also accepts, is not recognised here).
 */
export const verifyUsageReceipt = (
  domain: MarketDomain,
  receipt: UsageReceipt,
  signature: Hex,
  signers: readonly Address[],
) => verify(domain, "UsageReceipt", receipt, signature, signers);
