/**
 * Backfill progress: blocks done of the target, events per second over the last seconds, and an
 * ETA. On a terminal, one line redrawn in place; elsewhere a structured log line every few seconds.
 */
import type { Logger } from "../log.js";

const RATE_WINDOW_MS = 10_000;
const LOG_EVERY_MS = 5_000;

/** Events per second over a sliding window of samples. */
export class RateMeter {
  readonly #samples: { at: number; total: number }[] = [];
  #total = 0;

  add(events: number, now = performance.now()): void {
    this.#total += events;
    this.#samples.push({ at: now, total: this.#total });
    while (this.#samples.length > 2 && now - this.#samples[0]!.at > RATE_WINDOW_MS) this.#samples.shift();
  }

  get total(): number {
    return this.#total;
  }

  perSecond(now = performance.now()): number {
    const first = this.#samples[0];
    if (first === undefined || now - first.at <= 0) return 0;
    return (this.#total - first.total) / ((now - first.at) / 1000);
  }
}

export interface ProgressOptions {
  logger: Logger;
  /** Draw a bar (stderr is a terminal and the config allows it). */
  tty: boolean;
  write?: (text: string) => void;
}

export class BackfillProgress {
  readonly #options: ProgressOptions;
  readonly #meter = new RateMeter();
  #from = 0;
  #target = 0;
  #lastLog = 0;
  #startedAt = 0;
  #blocksPerSecond = 0;

  constructor(options: ProgressOptions) {
    this.#options = options;
  }

  start(from: number, target: number): void {
    this.#from = from;
    this.#target = target;
    this.#startedAt = performance.now();
    this.#lastLog = 0;
  }

  get eventsPerSecond(): number {
    return this.#meter.perSecond();
  }

  update(indexed: number, events: number): void {
    this.#meter.add(events);
    const now = performance.now();
    const done = indexed - this.#from + 1;
    const total = Math.max(1, this.#target - this.#from + 1);
    this.#blocksPerSecond = done / Math.max(0.001, (now - this.#startedAt) / 1000);
    const etaSeconds = Math.max(0, (this.#target - indexed) / Math.max(this.#blocksPerSecond, 1e-9));
    const fraction = Math.min(1, done / total);
    const rate = Math.round(this.#meter.perSecond());
    if (this.#options.tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
      const line = `backfill ${bar} ${(fraction * 100).toFixed(1)}% block ${indexed}/${this.#target} · ${rate} events/s · ETA ${formatDuration(etaSeconds)}`;
      (this.#options.write ?? ((text) => process.stderr.write(text)))(`\r${line}\x1b[K`);
    } else if (now - this.#lastLog >= LOG_EVERY_MS || indexed >= this.#target) {
      this.#lastLog = now;
      this.#options.logger.info("backfill", {
        block: indexed,
        target: this.#target,
        percent: Number((fraction * 100).toFixed(1)),
        events: this.#meter.total,
        eventsPerSecond: rate,
        etaSeconds: Math.round(etaSeconds),
      });
    }
  }

  finish(): void {
    if (this.#options.tty) (this.#options.write ?? ((text) => process.stderr.write(text)))("\n");
  }
}

export function formatDuration(seconds: number): string {
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return hours > 0 ? `${hours}:${String(minutes).padStart(2, "0")}:${rest}` : `${minutes}:${rest}`;
}
