/**
 * Sends the agent's transactions: simulated first (a revert is reported by the contract's error name
 * and arguments, and nothing is sent), one at a time per key (no nonce races), and waited for until
 * mined. A failure is a `ChainTransactionError` that says what the agent was doing.
 */
import {
  type Abi,
  BaseError,
  type Chain,
  ContractFunctionRevertedError,
  type Hash,
  type LocalAccount,
  type PublicClient,
  type Transport,
  type TransactionReceipt,
  type WalletClient,
} from "viem";
import { marketErrorsAbi } from "../../../protocol/index.js";
import type { Logger } from "../log/logger.js";

export class ChainTransactionError extends Error {
  constructor(
    readonly action: string,
    readonly reason: string,
    options?: ErrorOptions & { hash?: Hash },
  ) {
    super(`${action} failed: ${reason}${options?.hash ? ` (tx ${options.hash})` : ""}`, options);
    this.name = "ChainTransactionError";
  }
}

/** A contract revert as `ErrorName(arg, …)`, or viem's short message. */
export function describeChainError(error: unknown): string {
  if (error instanceof BaseError) {
    const reverted = error.walk((cause) => cause instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError && reverted.data?.errorName) {
      const args = (reverted.data.args ?? []).map((arg) => String(arg)).join(", ");
      return `${reverted.data.errorName}(${args})`;
    }
    return error.shortMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

export interface ContractCall {
  address: `0x${string}`;
  abi: Abi;
  functionName: string;
  args?: readonly unknown[];
}

export class TransactionSender {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly publicClient: PublicClient,
    private readonly wallet: WalletClient<Transport, Chain, LocalAccount>,
    private readonly logger: Logger,
  ) {}

  get address(): `0x${string}` {
    return this.wallet.account.address;
  }

  /** Simulates, sends and waits for `call`; `action` names it in logs and errors ("postBid tiny"). */
  send(action: string, call: ContractCall): Promise<TransactionReceipt> {
    const run = this.tail.then(
      () => this.sendNow(action, call),
      () => this.sendNow(action, call),
    );
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async sendNow(action: string, call: ContractCall): Promise<TransactionReceipt> {
    const abi = [...call.abi, ...marketErrorsAbi] as Abi;
    let request;
    try {
      ({ request } = await this.publicClient.simulateContract({
        address: call.address,
        abi,
        functionName: call.functionName,
        args: call.args ?? [],
        account: this.wallet.account,
      }));
    } catch (error) {
      throw new ChainTransactionError(action, describeChainError(error), { cause: error });
    }
    let hash: Hash;
    try {
      hash = await this.wallet.writeContract(request as Parameters<typeof this.wallet.writeContract>[0]);
    } catch (error) {
      throw new ChainTransactionError(action, describeChainError(error), { cause: error });
    }
    this.logger.info({ action, tx: hash, from: this.address }, "transaction sent");
    let receipt: TransactionReceipt;
    try {
      receipt = await this.publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
    } catch (error) {
      throw new ChainTransactionError(action, describeChainError(error), { cause: error, hash });
    }
    if (receipt.status !== "success") throw new ChainTransactionError(action, "reverted", { hash });
    this.logger.info({ action, tx: hash, block: receipt.blockNumber }, "transaction mined");
    return receipt;
  }
}
