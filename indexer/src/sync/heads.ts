/**
 * When to look for new blocks: at once when a websocket endpoint announces a new head
 * (`eth_subscribe newHeads` through viem), and every poll interval in any case — a silent socket
 * must not stall the indexer. The announcement is only a wake-up call; what to fetch is always
 * decided from the checkpoint.
 */
import { webSocket } from "viem";
import { errorMessage } from "../errors.js";
import type { Logger } from "../log.js";

const RESUBSCRIBE_DELAY_MS = 2_000;

/** A sleep that ends early when someone calls `wake`. */
export class Wakeup {
  #wake: (() => void) | undefined;
  #pending = false;

  wake(): void {
    this.#pending = true;
    this.#wake?.();
  }

  /** Resolves after `ms`, on `wake`, or on abort — whichever comes first. */
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#pending || signal?.aborted) {
      this.#pending = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
    this.#pending = false;
  }
}

/**
 * Subscribes to new heads over a websocket, subscribing again after a failure (a restarted node);
 * returns the unsubscribe function. `wake` is called for every new head, and once each time the
 * subscription starts: blocks mined while it was being set up are announced by no one.
 */
export function watchHeadsOverWebSocket(wsUrl: string, wake: () => void, logger: Logger): () => void {
  const transport = webSocket(wsUrl, { reconnect: { attempts: 5, delay: 1_000 }, retryCount: 0 })({});
  let stopped = false;
  let unsubscribe: (() => Promise<unknown>) | undefined;
  let lastError = "";
  const report = (error: unknown) => {
    // Logged once per kind of failure: a node down for minutes must not flood the log.
    if (errorMessage(error) !== lastError) logger.warn("websocket head subscription failed", { error, wsUrl });
    lastError = errorMessage(error);
  };
  const subscribe = async (): Promise<void> => {
    while (!stopped) {
      try {
        const subscription = await transport.value!.subscribe({
          params: ["newHeads"],
          onData: (data) => {
            if ((data.result as { number?: string } | undefined)?.number !== undefined) wake();
          },
          onError: (error) => {
            report(error);
            unsubscribe = undefined;
            if (!stopped) setTimeout(() => void subscribe(), RESUBSCRIBE_DELAY_MS);
          },
        });
        unsubscribe = subscription.unsubscribe;
        lastError = "";
        wake();
        return;
      } catch (error) {
        report(error);
        await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_DELAY_MS));
      }
    }
  };
  void subscribe();
  return () => {
    stopped = true;
    void unsubscribe?.().catch(() => undefined);
    void transport
      .value!.getRpcClient()
      .then((client) => client.close())
      .catch(() => undefined);
  };
}
