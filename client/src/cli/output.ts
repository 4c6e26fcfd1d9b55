/**
 * What a command prints: human text (aligned fields, colour on a terminal) or, with `--json`, one
 * JSON document on stdout for scripts (amounts as decimal strings of base units).
 */
import { styleText } from "node:util";

export interface Output {
  json: boolean;
  /** The result: printed as JSON with --json, else through `human`. */
  result(value: unknown, human: () => string): void;
  /** A line of human commentary on stderr (never mixed into --json output). */
  note(text: string): void;
  /** Streamed text (chat) on stdout. */
  write(text: string): void;
  bold(text: string): string;
  dim(text: string): string;
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? item.toString() : item), 2);
}

export function createOutput(options: {
  json: boolean;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}): Output {
  const color = options.stdout.isTTY && !process.env.NO_COLOR;
  const style = (format: Parameters<typeof styleText>[0], text: string) => (color ? styleText(format, text) : text);
  return {
    json: options.json,
    result(value, human) {
      options.stdout.write(options.json ? `${toJson(value)}\n` : `${human()}\n`);
    },
    note(text) {
      if (!options.json) options.stderr.write(`${text}\n`);
    },
    write(text) {
      options.stdout.write(text);
    },
    bold: (text) => style("bold", text),
    dim: (text) => style("dim", text),
  };
}

/** `label  value` lines, labels padded to one column. */
export function fields(rows: [string, string | number | bigint | boolean][]): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return rows
    .map(
      ([label, value]) =>
        `  ${label.padEnd(width)}${typeof value === "boolean" ? (value ? "yes" : "no") : String(value)}`,
    )
    .join("\n");
}

/** A plain text table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

export function time(unixSeconds: number | bigint): string {
  return Number(unixSeconds) === 0 ? "-" : new Date(Number(unixSeconds) * 1000).toISOString();
}
