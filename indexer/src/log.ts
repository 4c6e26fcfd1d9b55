/**
 * Structured logs: one JSON object a line (for machines and CI), or a short readable line on a
 * terminal. Tests pass a silent logger or collect the records.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogRecord {
  level: LogLevel;
  msg: string;
  [key: string]: unknown;
}

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export type LogFormat = "json" | "pretty";

/** JSON-safe fields: bigints as strings, errors as their message and cause chain. */
function serialise(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === "bigint") out[key] = value.toString();
    else if (value instanceof Error) out[key] = describeError(value);
    else out[key] = value;
  }
  return out;
}

function describeError(error: Error): string {
  const parts = [error.message];
  let cause = error.cause;
  while (cause instanceof Error && parts.length < 5) {
    parts.push(cause.message.split("\n")[0] ?? "");
    cause = cause.cause;
  }
  return parts.join(": ");
}

export function createLogger(options: {
  level?: LogLevel;
  format?: LogFormat;
  write?: (line: string) => void;
}): Logger {
  const threshold = LEVELS[options.level ?? "info"];
  const format = options.format ?? (process.stderr.isTTY ? "pretty" : "json");
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log =
    (level: LogLevel) =>
    (msg: string, fields: Record<string, unknown> = {}) => {
      if (LEVELS[level] < threshold) return;
      const data = serialise(fields);
      if (format === "json") {
        write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...data }));
      } else {
        const extra = Object.entries(data)
          .map(([key, value]) => `${key}=${typeof value === "string" ? value : JSON.stringify(value)}`)
          .join(" ");
        write(`${new Date().toISOString().slice(11, 19)} ${level.padEnd(5)} ${msg}${extra ? ` ${extra}` : ""}`);
      }
    };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
