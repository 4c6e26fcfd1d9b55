/**
 * Structured logging: one JSON object per line (`level`, `time`, `msg`, then fields), with child
 * loggers that add bindings. Its interface is the part of pino that fastify uses, so the same
 * logger serves the HTTP layer (`loggerInstance`) and the rest of the agent.
 *
 * Last line of defence for keys: every secret registered with `redact` is replaced in each line
 * before it is written (keys are never passed to a logger on purpose; this catches accidents).
 */

export type LogLevel = "trace" | "debug" | "info" | "warn" | "error" | "fatal" | "silent";

const LEVELS: Record<LogLevel, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: 100,
};

type Serializer = (value: unknown) => unknown;

interface LoggerShared {
  destination: (line: string) => void;
  secrets: Set<string>;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go (default: stdout). */
  destination?: (line: string) => void;
}

function serializeError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  const result: Record<string, unknown> = { type: error.name, message: error.message };
  for (const [key, value] of Object.entries(error)) {
    if (key !== "cause") result[key] = value;
  }
  if (error.stack) result.stack = error.stack;
  if (error.cause !== undefined) result.cause = serializeError(error.cause);
  return result;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return serializeError(value);
  return value;
}

export class Logger {
  private levelValue: number;

  private constructor(
    private readonly shared: LoggerShared,
    level: LogLevel,
    private readonly bindings: Record<string, unknown>,
    private readonly serializers: Record<string, Serializer>,
  ) {
    this.levelValue = LEVELS[level];
  }

  static create(options: LoggerOptions = {}): Logger {
    const destination = options.destination ?? ((line: string) => process.stdout.write(line));
    return new Logger({ destination, secrets: new Set() }, options.level ?? "info", {}, { err: serializeError });
  }

  get level(): LogLevel {
    return (Object.entries(LEVELS).find(([, value]) => value === this.levelValue)?.[0] ?? "info") as LogLevel;
  }

  set level(level: LogLevel) {
    this.levelValue = LEVELS[level];
  }

  isLevelEnabled(level: LogLevel): boolean {
    return LEVELS[level] >= this.levelValue;
  }

  /** Masks `secret` in every line this logger and its children write from now on. */
  redact(secret: string): void {
    if (secret.length < 8) return;
    const bare = secret.startsWith("0x") ? secret.slice(2) : secret;
    for (const variant of [bare, bare.toLowerCase(), bare.toUpperCase()]) this.shared.secrets.add(variant);
  }

  /** A logger whose lines carry `bindings`; `options.serializers` as pino takes them (fastify passes its own). */
  child(bindings: Record<string, unknown>, options: { serializers?: Record<string, Serializer> } = {}): Logger {
    return new Logger(
      this.shared,
      this.level,
      { ...this.bindings, ...bindings },
      { ...this.serializers, ...options.serializers },
    );
  }

  trace(fieldsOrMessage: unknown, message?: string): void {
    this.write("trace", fieldsOrMessage, message);
  }
  debug(fieldsOrMessage: unknown, message?: string): void {
    this.write("debug", fieldsOrMessage, message);
  }
  info(fieldsOrMessage: unknown, message?: string): void {
    this.write("info", fieldsOrMessage, message);
  }
  warn(fieldsOrMessage: unknown, message?: string): void {
    this.write("warn", fieldsOrMessage, message);
  }
  error(fieldsOrMessage: unknown, message?: string): void {
    this.write("error", fieldsOrMessage, message);
  }
  fatal(fieldsOrMessage: unknown, message?: string): void {
    this.write("fatal", fieldsOrMessage, message);
  }
  silent(): void {
    // pino's no-op level method: fastify may call it.
  }

  private write(level: LogLevel, fieldsOrMessage: unknown, message?: string): void {
    if (LEVELS[level] < this.levelValue) return;
    const entry: Record<string, unknown> = { level, time: new Date().toISOString(), ...this.bindings };
    if (typeof fieldsOrMessage === "string") {
      entry.msg = fieldsOrMessage;
    } else {
      if (fieldsOrMessage instanceof Error) {
        entry.err = serializeError(fieldsOrMessage);
      } else if (typeof fieldsOrMessage === "object" && fieldsOrMessage !== null) {
        for (const [key, value] of Object.entries(fieldsOrMessage)) {
          const serializer = this.serializers[key];
          entry[key] = serializer ? serializer(value) : value;
        }
      }
      entry.msg = message ?? (fieldsOrMessage instanceof Error ? fieldsOrMessage.message : undefined);
    }
    let line: string;
    try {
      line = JSON.stringify(entry, jsonReplacer);
    } catch {
      line = JSON.stringify({ level, time: entry.time, msg: String(entry.msg), note: "fields not serializable" });
    }
    for (const secret of this.shared.secrets) {
      if (line.includes(secret)) line = line.split(secret).join("[redacted]");
    }
    this.shared.destination(`${line}\n`);
  }
}

/** Collects lines in memory (tests, and the checks that no key is ever logged). */
export function memoryDestination(): { lines: string[]; write: (line: string) => void; text: () => string } {
  const lines: string[] = [];
  return { lines, write: (line) => lines.push(line), text: () => lines.join("") };
}
