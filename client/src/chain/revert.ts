/**
 * Reverts decoded with the market's error ABI and explained in words, with the allowed range where
 * an error carries one ("lower the deposit to at most 5 INFER").
 */
import { BaseError, ContractFunctionRevertedError, type Hex, RawContractError, decodeErrorResult } from "viem";
import { marketErrorsAbi } from "../../../protocol/index.js";
import { ContractRevertError } from "../errors.js";
import { type TokenInfo, formatAmount } from "./amounts.js";

export interface DecodedRevert {
  errorName: string;
  args: readonly unknown[];
}

/** The market error inside a viem error (simulation, estimate or call), if there is one. */
export function decodeRevert(error: unknown): DecodedRevert | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const reverted = error.walk(
    (cause) => cause instanceof ContractFunctionRevertedError || cause instanceof RawContractError,
  );
  if (reverted instanceof ContractFunctionRevertedError) {
    if (reverted.data) return { errorName: reverted.data.errorName, args: reverted.data.args ?? [] };
    if (reverted.raw) return decodeRaw(reverted.raw);
    if (reverted.reason) return { errorName: "Error", args: [reverted.reason] };
    return undefined;
  }
  if (reverted instanceof RawContractError) {
    const data = typeof reverted.data === "object" ? reverted.data.data : reverted.data;
    if (data && data !== "0x") return decodeRaw(data);
  }
  // Some nodes (hardhat's eth_call) answer a revert as an RPC error whose `data` is the revert data.
  const withData = error.walk((cause) => revertDataOf(cause) !== undefined);
  const data = revertDataOf(withData);
  return data === undefined ? undefined : decodeRaw(data);
}

function revertDataOf(error: unknown): Hex | undefined {
  const data = (error as { data?: unknown } | null)?.data;
  const hex = typeof data === "object" && data !== null ? (data as { data?: unknown }).data : data;
  return typeof hex === "string" && /^0x[0-9a-fA-F]{8,}$/.test(hex) ? (hex as Hex) : undefined;
}

function decodeRaw(data: Hex): DecodedRevert {
  try {
    const decoded = decodeErrorResult({ abi: marketErrorsAbi, data });
    return { errorName: decoded.errorName, args: decoded.args };
  } catch {
    return { errorName: `unknown error ${data.slice(0, 10)}`, args: [] };
  }
}

const time = (seconds: unknown) => `${new Date(Number(seconds) * 1000).toISOString()} (${String(seconds)})`;

/** Words for one market error: what went wrong and, where there is one, the allowed range or next step. */
export function explainRevert(revert: DecodedRevert, token: TokenInfo): { explanation: string; hint?: string } {
  const a = revert.args;
  const amount = (value: unknown) => formatAmount(value as bigint, token);
  switch (revert.errorName) {
    case "ERC20InsufficientBalance":
      return {
        explanation: `the balance is ${amount(a[1])}, ${amount(a[2])} is needed`,
        hint: "fund the account with the market token or ask for less",
      };
    case "ERC20InsufficientAllowance":
      return { explanation: `the allowance is ${amount(a[1])}, ${amount(a[2])} is needed` };
    case "DepositAboveApproval":
      return {
        explanation: `the deposit would be ${amount(a[0])}; the provider approved at most ${amount(a[1])}`,
        hint: `use a deposit of at most ${amount(a[1])}`,
      };
    case "DepositTooSmall":
      return {
        explanation: `a deposit of ${amount(a[0])} does not pay for one second at ${amount(a[1])} per second`,
        hint: `deposit at least ${amount(a[1])}`,
      };
    case "DepositTooLarge":
      return { explanation: `${amount(a[0])} is above the largest deposit (2^96 - 1 base units)` };
    case "ZeroDeposit":
    case "ZeroAmount":
      return { explanation: "the amount must be above zero" };
    case "ApprovalExpired":
      return {
        explanation: `the provider's approval expired at ${time(a[0])}`,
        hint: "open again for a fresh approval",
      };
    case "PriceAboveMaximum":
      return {
        explanation: `the bid now costs ${String(a[0])} where you accepted at most ${String(a[1])}`,
        hint: "look at the bid again (`market rank`) and open at its new price",
      };
    case "PriceTooHigh":
      return {
        explanation: `a price of ${String(a[0])} is above the maximum ${String(a[1])} base units`,
        hint: `use a price from 0 to ${String(a[1])} base units`,
      };
    case "BidNotActive":
      return { explanation: `bid ${String(a[0])} is not active`, hint: "choose another bid (`market rank`)" };
    case "BidAlreadyActive":
      return {
        explanation: `bid ${String(a[0])} is active already`,
        hint: "change its prices with `market bid update`",
      };
    case "NotBidProvider":
      return { explanation: `bid ${String(a[0])} belongs to another provider` };
    case "InsufficientStake":
      return {
        explanation: `you stake ${amount(a[0])} and asked to unstake ${amount(a[1])}`,
        hint: `unstake at most ${amount(a[0])}`,
      };
    case "StakeBelowMinimum":
      return {
        explanation: `${String(a[0])} stakes ${amount(a[1])}; the minimum is ${amount(a[2])}`,
        hint: `stake at least ${amount((a[2] as bigint) - (a[1] as bigint))} more (\`market stake\`)`,
      };
    case "StillUnbonding":
      return { explanation: `the stake unlocks at ${time(a[0])}`, hint: "withdraw after that time" };
    case "NothingToWithdraw":
      return { explanation: "no unbonded stake to withdraw", hint: "request it first with `market unstake <amount>`" };
    case "NothingToClaim":
      return { explanation: `${String(a[0])} has nothing to claim` };
    case "ProviderNotRegistered":
      return {
        explanation: `${String(a[0])} is not a registered provider`,
        hint: "register it (the provider agent does so at start)",
      };
    case "ModelNotActive":
      return { explanation: `model ${String(a[0])} is not active`, hint: "list models with `market models`" };
    case "SessionNotOpen":
      return { explanation: `session ${String(a[0])} is not open (closing or settled)` };
    case "SessionExpired":
      return { explanation: `session ${String(a[0])} ended at ${time(a[1])}`, hint: "close it (`market close`)" };
    case "ChallengeWindowOpen":
      return { explanation: `the challenge window is open until ${time(a[0])}`, hint: "finalize after that time" };
    case "RoyaltyAboveApproval":
      return {
        explanation: `the model's royalty is ${String(a[0])} bps, the provider accepted at most ${String(a[1])}`,
      };
    case "FeeAboveApproval":
      return { explanation: `the protocol fee is ${String(a[0])} bps, the provider accepted at most ${String(a[1])}` };
    case "ApprovalNonceUsed":
      return {
        explanation: `provider ${String(a[0])} already used approval nonce ${String(a[1])}`,
        hint: "open again",
      };
    case "InvalidApprovalSigner":
      return { explanation: `the approval is not signed by provider ${String(a[0])} or its operator` };
    default:
      return { explanation: revert.errorName === "Error" ? String(a[0]) : "the contract refused the call" };
  }
}

/** A `ContractRevertError` for `error` when it is a decodable revert; undefined otherwise. */
export function revertError(error: unknown, functionName: string, token: TokenInfo): ContractRevertError | undefined {
  const revert = decodeRevert(error);
  if (!revert) return undefined;
  const { explanation, hint } = explainRevert(revert, token);
  return new ContractRevertError(functionName, revert.errorName, revert.args, explanation, { hint, cause: error });
}
