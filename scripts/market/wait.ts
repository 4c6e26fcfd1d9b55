/**
 * Waiting for a condition, polling, with a deadline: how the market's start and its tests wait for
 * a service to answer or a chain state to appear (never a fixed sleep).
 */

export class WaitTimeoutError extends Error {
  constructor(what: string, timeoutMs: number, cause?: unknown) {
    super(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`, { cause });
    this.name = "WaitTimeoutError";
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Stops waiting (rejects with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

/** Resolves with the first value of `check` that is neither undefined nor false. */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new WaitTimeoutError(what, timeoutMs, lastError);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}

/** The HTTP status `url` answers with, or undefined when nothing answers. */
export async function httpStatus(url: string): Promise<number | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return undefined;
  }
}
