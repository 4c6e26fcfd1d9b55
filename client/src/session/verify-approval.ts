/**
 * The client's checks of a provider's approval before it spends anything on it. Each failure is an
 * `ApprovalRejectedError` naming what was wrong; the open then moves on to the next bid.
 */
import { type Address, type Hex, isAddressEqual, zeroAddress } from "viem";
import { type MarketDomain, type Prices, recoverSessionSigner } from "../../../protocol/index.js";
import type { ApprovalResponse } from "../agent/agent-client.js";
import { ApprovalRejectedError } from "../errors.js";

const MAX_UINT64 = (1n << 64n) - 1n;
const MAX_BPS = 10_000;

export interface ApprovalExpectations {
  domain: MarketDomain;
  bidId: Hex;
  user: Address;
  provider: Address;
  /** The provider's operator on chain (zero when it has none). */
  operator: Address;
  deposit: bigint;
  maxDuration: number;
  /** The prices the user was shown: the approval's and the bid's must not be higher. */
  shownPrices: Prices;
  /** The bid's prices on chain now. */
  bidPrices: Prices;
  /** The model's effective royalty and the protocol fee an open would take now. */
  royaltyBps: number;
  feeBps: number;
  /** Chain time, unix seconds. */
  now: number;
  minValiditySeconds: number;
  nonceUsed: (nonce: bigint) => Promise<boolean>;
}

function raised(prices: Prices, limit: Prices): string | undefined {
  for (const name of ["perSecond", "perInputToken", "perOutputToken"] as const) {
    if (prices[name] > limit[name]) return `${name} ${prices[name]} is above the ${limit[name]} shown`;
  }
  return undefined;
}

/** Throws `ApprovalRejectedError` unless the approval is one the client can safely open with. */
export async function verifyApproval(response: ApprovalResponse, expected: ApprovalExpectations): Promise<void> {
  const { approval } = response;
  const reject = (reason: string): never => {
    throw new ApprovalRejectedError(expected.bidId, reason);
  };
  if (
    response.chainId !== expected.domain.chainId ||
    !isAddressEqual(response.sessionRouter, expected.domain.verifyingContract)
  ) {
    reject(`it is for chain ${response.chainId} and router ${response.sessionRouter}, not this market`);
  }
  if (approval.bidId.toLowerCase() !== expected.bidId.toLowerCase())
    reject(`it is for another bid (${approval.bidId})`);
  if (!isAddressEqual(approval.user, expected.user)) reject(`it names another user (${approval.user})`);
  if (!isAddressEqual(response.provider, expected.provider))
    reject(`it claims another provider (${response.provider})`);
  if (approval.maxDeposit < expected.deposit) {
    reject(`it caps the deposit at ${approval.maxDeposit}, below the ${expected.deposit} asked`);
  }
  if (approval.maxDuration < BigInt(expected.maxDuration)) {
    reject(`it grants ${approval.maxDuration} s, less than the ${expected.maxDuration} s asked`);
  }
  if (approval.deadline < BigInt(Math.floor(expected.now + expected.minValiditySeconds))) {
    reject(`its deadline ${approval.deadline} has passed or is too close (now ${Math.floor(expected.now)})`);
  }
  if (approval.nonce > MAX_UINT64) reject(`its nonce ${approval.nonce} is above 2^64 - 1`);
  const priceRaise = raised(response.prices, expected.shownPrices) ?? raised(expected.bidPrices, expected.shownPrices);
  if (priceRaise !== undefined) reject(`the price was raised: ${priceRaise}`);
  if (approval.maxRoyaltyBps > MAX_BPS || approval.maxFeeBps > MAX_BPS) {
    reject(`its royalty/fee bounds (${approval.maxRoyaltyBps}/${approval.maxFeeBps} bps) are above 100%`);
  }
  if (approval.maxRoyaltyBps < expected.royaltyBps) {
    reject(`it accepts a royalty of at most ${approval.maxRoyaltyBps} bps; the model's is ${expected.royaltyBps}`);
  }
  if (approval.maxFeeBps < expected.feeBps) {
    reject(`it accepts a protocol fee of at most ${approval.maxFeeBps} bps; the fee is ${expected.feeBps}`);
  }
  let signer: Address;
  try {
    signer = await recoverSessionSigner(expected.domain, "SessionApproval", approval, response.signature);
  } catch {
    return reject("its signature is malformed");
  }
  const bySigner =
    isAddressEqual(signer, expected.provider) ||
    (!isAddressEqual(expected.operator, zeroAddress) && isAddressEqual(signer, expected.operator));
  if (!bySigner) reject(`it is signed by ${signer}, neither the provider nor its operator`);
  if (!isAddressEqual(signer, response.signer))
    reject(`it says it is signed by ${response.signer}, but ${signer} signed`);
  if (await expected.nonceUsed(approval.nonce)) reject(`its nonce ${approval.nonce} is spent`);
}
