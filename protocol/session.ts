/**
 * Session terms and ids, computed exactly as `SessionRouter` does, so any part of the market can
 * name a session (and check terms it was handed) without a call to the chain.
 */
import { type Address, type Hex, encodeAbiParameters, getAddress, keccak256 } from "viem";

/**
 * Mirrors the Solidity `SessionTerms` struct; its hash is the session id. `sessionKey` is the EOA
 * the user named at open: it alone signs the session's `UsageReceipt`s and `SessionAuth` tokens,
 * with plain ECDSA (never ERC-1271); for an EOA user it is usually the user itself.
 */
export interface SessionTerms {
  user: Address;
  sessionKey: Address;
  provider: Address;
  modelId: Hex;
  nonce: bigint;
  pricePerSecond: bigint;
  pricePerInputToken: bigint;
  pricePerOutputToken: bigint;
  royaltyRecipient: Address;
  royaltyBps: number;
  feeBps: number;
  challengeWindow: number;
  maxDeposit: bigint;
  openedAt: number;
  maxEndsAt: number;
}

export const sessionTermsAbiParameter = {
  type: "tuple",
  components: [
    { name: "user", type: "address" },
    { name: "sessionKey", type: "address" },
    { name: "provider", type: "address" },
    { name: "modelId", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "pricePerSecond", type: "uint256" },
    { name: "pricePerInputToken", type: "uint256" },
    { name: "pricePerOutputToken", type: "uint256" },
    { name: "royaltyRecipient", type: "address" },
    { name: "royaltyBps", type: "uint16" },
    { name: "feeBps", type: "uint16" },
    { name: "challengeWindow", type: "uint32" },
    { name: "maxDeposit", type: "uint96" },
    { name: "openedAt", type: "uint40" },
    { name: "maxEndsAt", type: "uint40" },
  ],
} as const;

/** keccak256 of the ABI-encoded terms: `SessionRouter.sessionIdOf`. */
export function sessionIdOf(terms: SessionTerms): Hex {
  return keccak256(encodeAbiParameters([sessionTermsAbiParameter], [terms]));
}

/** A bid's id: the provider in the high 160 bits, the low 96 bits of the model id below (`BidId.sol`). */
export function bidIdOf(provider: Address, modelId: Hex): Hex {
  const id = (BigInt(provider) << 96n) | (BigInt(modelId) & ((1n << 96n) - 1n));
  return `0x${id.toString(16).padStart(64, "0")}`;
}

/** The provider a bid id belongs to. */
export function providerOfBid(bidId: Hex): Address {
  const provider = BigInt(bidId) >> 96n;
  return getAddress(`0x${provider.toString(16).padStart(40, "0")}`);
}

/** A model's id: keccak256(abi.encode(owner, contentHash)) (`ModelRegistry.modelIdOf`). */
export function modelIdOf(owner: Address, contentHash: Hex): Hex {
  return keccak256(encodeAbiParameters([{ type: "address" }, { type: "bytes32" }], [owner, contentHash]));
}

export interface Prices {
  perSecond: bigint;
  perInputToken: bigint;
  perOutputToken: bigint;
}

export interface Usage {
  inputTokens: bigint;
  outputTokens: bigint;
}

/** What `SessionRouter` will charge: min(deposit, seconds·price + tokens·prices). */
export function sessionCost(terms: SessionTerms, elapsedSeconds: bigint, usage: Usage, deposit: bigint): bigint {
  const cost = elapsedSeconds * terms.pricePerSecond + usageCost(terms, usage);
  return cost < deposit ? cost : deposit;
}

/**
 * What a receipt's tokens cost, before time and the deposit cap (`SessionLib.usageCost`): a
 * challenge wins only with a receipt whose usage cost is higher than the closing receipt's.
 */
export function usageCost(terms: Pick<SessionTerms, "pricePerInputToken" | "pricePerOutputToken">, usage: Usage) {
  return usage.inputTokens * terms.pricePerInputToken + usage.outputTokens * terms.pricePerOutputToken;
}

/** How the cost is divided: fee and royalty round down, the provider gets the remainder. */
export function splitCost(terms: Pick<SessionTerms, "feeBps" | "royaltyBps">, cost: bigint) {
  const feeAmount = (cost * BigInt(terms.feeBps)) / 10_000n;
  const royaltyAmount = (cost * BigInt(terms.royaltyBps)) / 10_000n;
  return { providerAmount: cost - feeAmount - royaltyAmount, royaltyAmount, feeAmount };
}
