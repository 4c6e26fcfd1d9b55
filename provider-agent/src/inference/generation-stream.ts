/**
 * The `Generation` a backend returns: the backend pushes chunks as tokens come, the HTTP layer iterates
 * them at its own pace. Generation never waits for the reader (a slow client does not hold a batch
 * back); the chunks of one request are few enough to buffer.
 */
import type { Generation, GenerationChunk, GenerationResult } from "./backend.js";

export class GenerationStream implements Generation {
  readonly result: Promise<GenerationResult>;
  private readonly chunks: GenerationChunk[] = [];
  private settled: { result: GenerationResult } | { error: unknown } | undefined;
  private wakeReader: (() => void) | undefined;
  private iterated = false;
  private resolveResult!: (result: GenerationResult) => void;
  private rejectResult!: (error: unknown) => void;

  constructor(readonly inputTokens: number) {
    this.result = new Promise<GenerationResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    // The reader may only iterate; a failure then surfaces there, not as an unhandled rejection.
    this.result.catch(() => undefined);
  }

  /** Whether `finish` or `fail` was called: later chunks are dropped. */
  get done(): boolean {
    return this.settled !== undefined;
  }

  push(chunk: GenerationChunk): void {
    if (this.settled) return;
    this.chunks.push(chunk);
    this.wake();
  }

  finish(result: GenerationResult): void {
    if (this.settled) return;
    this.settled = { result };
    this.resolveResult(result);
    this.wake();
  }

  fail(error: unknown): void {
    if (this.settled) return;
    this.settled = { error };
    this.rejectResult(error);
    this.wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationChunk, void, undefined> {
    if (this.iterated) throw new Error("a Generation can be iterated once");
    this.iterated = true;
    for (;;) {
      const chunk = this.chunks.shift();
      if (chunk) {
        yield chunk;
        continue;
      }
      if (this.settled) {
        if ("error" in this.settled) throw this.settled.error;
        return;
      }
      await new Promise<void>((resolve) => (this.wakeReader = resolve));
    }
  }

  private wake(): void {
    const wake = this.wakeReader;
    this.wakeReader = undefined;
    wake?.();
  }
}
