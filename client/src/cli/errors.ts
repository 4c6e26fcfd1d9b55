/**
 * How a failed command ends: an expected error (`MarketError`, or an agent's refusal through the
 * `openai` SDK) prints its message and the next step, without a stack trace, and exits 1 (2 for a
 * usage or configuration mistake); anything else is a bug: printed with its stack, exit 3.
 */
import { APIError } from "openai";
import { ConfigError, InvalidArgumentError, MarketError, WalletKeyError } from "../errors.js";
import { toJson } from "./output.js";

export const EXIT = { ok: 0, failed: 1, usage: 2, bug: 3 } as const;

const AGENT_HINTS: Record<string, string> = {
  deposit_exhausted: "top up the session (`market topup <id> <amount>`) or start a new one (`market chat --new …`)",
  session_expired: "the session ended: close it (`market close <id>`); `market chat` then opens a new one",
  session_closed: "the session is closing: chat again with --new",
  receipt_required: "the agent wants a receipt first: try again (the client sends it with the next request)",
  queue_full: "the provider is busy: try again in a moment",
  rate_limited: "slow down and try again in a moment",
  model_not_in_session: "this session is for another model",
  max_tokens_too_large: "ask for fewer --max-tokens",
  prompt_too_long: "shorten the prompt",
};

interface ErrorReport {
  error: string;
  message: string;
  hint?: string | undefined;
  code?: string;
}

/** `fallbackHint`: the next step for an expected error that names none (e.g. the command's --help). */
export function reportError(error: unknown, stderr: NodeJS.WriteStream, json: boolean, fallbackHint?: string): number {
  if (error instanceof APIError) {
    const code = typeof error.code === "string" ? error.code : `http_${String(error.status)}`;
    print(stderr, json, {
      error: "AgentRefusal",
      code,
      message: `the provider refused: ${error.message}`,
      hint: AGENT_HINTS[code],
    });
    return EXIT.failed;
  }
  if (error instanceof MarketError) {
    print(stderr, json, { error: error.name, message: error.message, hint: error.hint ?? fallbackHint });
    const usage =
      error instanceof InvalidArgumentError || error instanceof ConfigError || error instanceof WalletKeyError;
    return usage ? EXIT.usage : EXIT.failed;
  }
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  stderr.write(`unexpected error (a bug; please report it):\n${message}\n`);
  return EXIT.bug;
}

function print(stderr: NodeJS.WriteStream, json: boolean, report: ErrorReport) {
  if (json) {
    stderr.write(`${toJson(report)}\n`);
    return;
  }
  stderr.write(`error: ${report.message}\n`);
  if (report.hint) stderr.write(`  → ${report.hint}\n`);
}
