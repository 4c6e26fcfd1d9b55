/**
 * Shows the progress of a long operation (a model download, a model load): a redrawn bar when the
 * output is a terminal, otherwise a structured log line every few percent, so a service log gets a
 * readable record instead of a stream of carriage returns.
 */
import { performance } from "node:perf_hooks";

export interface ProgressUpdate {
  /** Done so far, in `unit`s. */
  done: number;
  /** Total when known. */
  total?: number;
}

export type ProgressLogLine = (fields: Record<string, string | number>, message: string) => void;

export interface ProgressReporterOptions {
  /** What is progressing, e.g. "download tiny.gguf". */
  label: string;
  unit?: "bytes" | "fraction";
  /** Where a bar is drawn; defaults to stderr. */
  stream?: NodeJS.WriteStream;
  /** Where log lines go when `stream` is not a terminal; defaults to JSON lines on `stream`. */
  log?: ProgressLogLine;
  /** Least percentage between two log lines (default 10). */
  logEveryPercent?: number;
}

export interface ProgressReporter {
  update(progress: ProgressUpdate): void;
  /** Ends the bar's line, or logs the final line. */
  done(): void;
}

const BAR_WIDTH = 30;
const REDRAW_EVERY_MS = 100;

export function createProgressReporter(options: ProgressReporterOptions): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const unit = options.unit ?? "bytes";
  const log: ProgressLogLine =
    options.log ?? ((fields, message) => stream.write(`${JSON.stringify({ ...fields, msg: message })}\n`));
  const logStep = options.logEveryPercent ?? 10;
  const startedAt = performance.now();
  let last: ProgressUpdate = { done: 0 };
  let lastDrawAt = -Infinity;
  let lastLoggedPercent = -Infinity;

  const percentOf = (progress: ProgressUpdate): number | undefined =>
    progress.total ? Math.min(100, (progress.done / progress.total) * 100) : undefined;

  const describe = (progress: ProgressUpdate): string => {
    if (unit === "fraction") return "";
    const seconds = (performance.now() - startedAt) / 1000;
    const rate = seconds > 0 ? progress.done / seconds : 0;
    const total = progress.total === undefined ? "" : ` / ${formatBytes(progress.total)}`;
    return ` ${formatBytes(progress.done)}${total} ${formatBytes(rate)}/s`;
  };

  const draw = (progress: ProgressUpdate): void => {
    const percent = percentOf(progress);
    const filled = percent === undefined ? 0 : Math.round((percent / 100) * BAR_WIDTH);
    const bar = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
    const percentText = percent === undefined ? "" : ` ${percent.toFixed(1)}%`;
    stream.write(`\r${options.label} ${bar}${percentText}${describe(progress)}\x1b[K`);
  };

  const logLine = (progress: ProgressUpdate, message: string): void => {
    const percent = percentOf(progress);
    const fields: Record<string, string | number> = { task: options.label, done: progress.done };
    if (progress.total !== undefined) fields.total = progress.total;
    if (percent !== undefined) fields.percent = Math.round(percent * 10) / 10;
    fields.elapsedMs = Math.round(performance.now() - startedAt);
    log(fields, message);
  };

  return {
    update(progress) {
      last = progress;
      if (stream.isTTY) {
        const now = performance.now();
        if (now - lastDrawAt < REDRAW_EVERY_MS && progress.done !== progress.total) return;
        lastDrawAt = now;
        draw(progress);
        return;
      }
      const percent = percentOf(progress) ?? 0;
      if (percent - lastLoggedPercent < logStep) return;
      lastLoggedPercent = percent;
      logLine(progress, "progress");
    },
    done() {
      if (stream.isTTY) {
        draw(last);
        stream.write("\n");
      } else logLine(last, "done");
    },
  };
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let index = 0;
  while (value >= 1024 && index < units.length - 1) {
    value /= 1024;
    index++;
  }
  return `${value.toFixed(index === 0 ? 0 : 1)} ${units[index]!}`;
}
