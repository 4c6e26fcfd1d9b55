/**
 * Every failure the client expects, as a class with the context a user needs to act on it. Each
 * carries a `hint`: the next step, in words ("lower --deposit to at most 5 INFER", "start the
 * agent"). The CLI prints message and hint without a stack trace; anything that is not a
 * `MarketError` is a bug and is printed with its stack.
 */
import type { Address, Hex } from "viem";

export interface MarketErrorOptions {
  hint?: string;
  cause?: unknown;
}

export abstract class MarketError extends Error {
  /** What to do next. */
  readonly hint: string | undefined;

  constructor(message: string, options: MarketErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint;
    this.name = new.target.name;
  }
}

/** A setting (env var, flag or SDK option) is missing or malformed. Nothing was changed. */
export class ConfigError extends MarketError {
  constructor(
    readonly setting: string,
    detail: string,
    options: MarketErrorOptions = {},
  ) {
    super(`${setting}: ${detail}`, options);
  }
}

/** An argument of an SDK call or CLI command is malformed or out of range. Nothing was changed. */
export class InvalidArgumentError extends MarketError {
  constructor(
    readonly argument: string,
    detail: string,
    options: MarketErrorOptions = {},
  ) {
    super(`${argument}: ${detail}`, options);
  }
}

/** No wallet key is configured, or the one configured cannot be read. */
export class WalletKeyError extends MarketError {}

/** The market's contracts are not where the deployment file says on this chain (wrong network). */
export class MarketNotDeployedError extends MarketError {
  constructor(
    readonly chainId: number,
    readonly rpcUrl: string,
    readonly contract: string,
    readonly address: Address,
    readonly deploymentPath: string,
  ) {
    super(
      `no ${contract} contract at ${address} on chain ${chainId} (${rpcUrl}); the addresses come from ${deploymentPath}`,
      {
        hint:
          "point --rpc-url (MARKET_RPC_URL) at the chain this deployment belongs to, or --deployment (MARKET_DEPLOYMENT) " +
          "at this chain's deployed_addresses.json; a restarted hardhat node is a new chain: deploy again (npm start)",
      },
    );
  }
}

/** A contract call reverted (decoded with the market's error ABI). */
export class ContractRevertError extends MarketError {
  constructor(
    readonly functionName: string,
    readonly errorName: string,
    readonly args: readonly unknown[],
    explanation: string,
    options: MarketErrorOptions = {},
  ) {
    super(`${functionName} reverted with ${errorName}(${args.map(String).join(", ")}): ${explanation}`, options);
  }
}

/** The wallet holds fewer tokens than the action needs. Checked before anything is sent. */
export class InsufficientBalanceError extends MarketError {
  constructor(
    readonly account: Address,
    readonly balance: bigint,
    readonly needed: bigint,
    formatted: { balance: string; needed: string; what: string },
  ) {
    super(`${account} holds ${formatted.balance}; ${formatted.what} needs ${formatted.needed}`, {
      hint: "fund this account with the market token, or ask for less (--deposit / the amount)",
    });
  }
}

/** The indexer could not be reached or answered with errors. */
export class IndexerError extends MarketError {
  constructor(
    readonly url: string,
    detail: string,
    options: MarketErrorOptions = {},
  ) {
    super(`indexer ${url}: ${detail}`, {
      hint: options.hint ?? "check --indexer-url (MARKET_INDEXER_URL) and that `indexer start` is running",
      cause: options.cause,
    });
  }
}

/** A provider agent refused a request or could not be reached. `code` is the agent's error code. */
export class AgentRequestError extends MarketError {
  constructor(
    readonly endpoint: string,
    readonly route: string,
    readonly status: number | undefined,
    readonly code: string,
    detail: string,
    options: MarketErrorOptions = {},
  ) {
    super(`agent ${endpoint} ${route}: ${status === undefined ? "" : `${status} `}${code}: ${detail}`, options);
  }
}

/** A provider's approval failed the client's checks; the open moves on to the next bid. */
export class ApprovalRejectedError extends MarketError {
  constructor(
    readonly bidId: Hex,
    readonly reason: string,
  ) {
    super(`approval for bid ${bidId} rejected: ${reason}`);
  }
}

/** One bid the open tried and why it did not open there. */
export interface OpenAttempt {
  bidId: Hex;
  provider: Address;
  endpoint: string;
  reason: string;
}

/** No bid of the model could be opened: every provider refused, was down, or gave a bad approval. */
export class NoProviderAvailableError extends MarketError {
  constructor(
    readonly target: string,
    readonly attempts: readonly OpenAttempt[],
  ) {
    super(
      attempts.length === 0
        ? `no active bid for ${target}`
        : `no provider opened a session for ${target}:\n${attempts.map((a) => `  bid ${a.bidId} (${a.endpoint}): ${a.reason}`).join("\n")}`,
      { hint: attempts.length === 0 ? "list models with `market models`" : "try again later, or another model" },
    );
  }
}

/** No session with this id in the local store (nor, where asked, on the indexer). */
export class SessionNotFoundError extends MarketError {
  constructor(
    readonly sessionId: string,
    where: string,
  ) {
    super(`no session ${sessionId} ${where}`, { hint: "list sessions with `market sessions`" });
  }
}

/** A session is not in the phase the action needs (closing a settled one, chatting on a closed one). */
export class SessionStateError extends MarketError {}

/** A close is waiting for its challenge window; `finalize` works from `challengeEndsAt` on. */
export class ChallengeWindowOpenError extends MarketError {
  constructor(
    readonly sessionId: Hex,
    readonly challengeEndsAt: number,
    readonly secondsLeft: number,
  ) {
    super(
      `session ${sessionId} is closing; its challenge window ends at ${new Date(challengeEndsAt * 1000).toISOString()}`,
      {
        hint: `run \`market close ${sessionId}\` again in ${secondsLeft} s to finalize it and receive the refund`,
      },
    );
  }
}

/** The local session store cannot be read, written or unlocked. */
export class SessionStoreError extends MarketError {}

/** There is nothing to claim in escrow. */
export class NothingToClaimError extends MarketError {
  constructor(readonly account: Address) {
    super(`${account} has nothing to claim in escrow`, {
      hint: "earnings, royalties and credited refunds appear there once sessions settle",
    });
  }
}
