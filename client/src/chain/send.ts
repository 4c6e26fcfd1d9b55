/**
 * Sends one contract call: simulated first (so a revert is decoded and explained before any gas is
 * spent), then signed, sent and waited for.
 */
import {
  type Abi,
  type Address,
  type ContractFunctionArgs,
  type ContractFunctionName,
  type EncodeFunctionDataParameters,
  type Hex,
  type TransactionReceipt,
  encodeFunctionData,
} from "viem";
import { MarketError, WalletKeyError } from "../errors.js";
import { WALLET_ENV_HELP } from "../wallet/load-account.js";
import type { MarketChain, MarketWalletClient } from "./connect.js";
import type { Progress } from "./progress.js";
import { revertError } from "./revert.js";

export class TransactionFailedError extends MarketError {}

export function requireWallet(chain: MarketChain): MarketWalletClient {
  if (!chain.walletClient)
    throw new WalletKeyError("this action sends a transaction and needs a wallet key", { hint: WALLET_ENV_HELP });
  return chain.walletClient;
}

export interface ContractCall<
  TAbi extends Abi,
  TFunctionName extends ContractFunctionName<TAbi, "nonpayable" | "payable">,
> {
  address: Address;
  abi: TAbi;
  functionName: TFunctionName;
  args: ContractFunctionArgs<TAbi, "nonpayable" | "payable", TFunctionName>;
}

export async function sendContractCall<
  const TAbi extends Abi,
  TFunctionName extends ContractFunctionName<TAbi, "nonpayable" | "payable">,
>(
  chain: MarketChain,
  progress: Progress,
  label: string,
  call: ContractCall<TAbi, TFunctionName>,
  hooks: { onSent?: (hash: Hex) => Promise<void> } = {},
): Promise<TransactionReceipt> {
  const wallet = requireWallet(chain);
  const data = encodeFunctionData({
    abi: call.abi,
    functionName: call.functionName,
    args: call.args,
  } as EncodeFunctionDataParameters);
  return progress.step(label, async (update) => {
    try {
      await chain.publicClient.call({ account: wallet.account, to: call.address, data });
    } catch (error) {
      throw revertError(error, call.functionName, chain.token) ?? error;
    }
    let hash;
    try {
      hash = await wallet.sendTransaction({ to: call.address, data });
    } catch (error) {
      throw revertError(error, call.functionName, chain.token) ?? error;
    }
    update(`${label} (tx ${hash})`);
    await hooks.onSent?.(hash);
    const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") {
      throw new TransactionFailedError(`${call.functionName} transaction ${hash} reverted on chain`, {
        hint: "the chain changed between the check and the transaction; try again",
      });
    }
    return receipt;
  });
}
