/**
 * The generations a backend is running, so that a drain can wait for them and a close can let the
 * aborted ones finish. Shared by the embedded engine and the upstream backend.
 */
export class InFlightGenerations {
  readonly #running = new Set<Promise<void>>();

  get size(): number {
    return this.#running.size;
  }

  /** Tracks `run` until it settles. */
  add(run: Promise<void>): void {
    this.#running.add(run);
    void run.finally(() => this.#running.delete(run));
  }

  /** Resolves when every tracked generation has finished; rejects after `graceMs` naming how many still run. */
  async drain(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`drain: ${this.#running.size} generation(s) still running after ${graceMs} ms`));
      }, graceMs);
    });
    try {
      await Promise.race([this.settled(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when every generation tracked now has finished. */
  async settled(): Promise<void> {
    await Promise.all(this.#running);
  }
}
