/**
 * The agent and the indexer log one JSON object a line (for machines). On a terminal `npm start`
 * shows each as a short line: level (when not info), message, then the fields as key=value, long
 * values cut. A line that is not a JSON log record passes unchanged.
 */

/** pino's numeric levels (the agent) and the indexer's names. */
const LEVEL_NAMES: Record<number, string> = {
  10: "trace",
  20: "debug",
  30: "info",
  40: "warn",
  50: "error",
  60: "fatal",
};
/** Fields every record carries that say nothing on a terminal. */
const OMITTED = new Set(["level", "time", "msg", "pid", "hostname", "v"]);
const MAX_VALUE_LENGTH = 160;
/** Records too frequent for a terminal (the agent reports a model's loading every few percent). */
const QUIET_MESSAGES = new Set(["model load progress"]);

function levelName(level: unknown): string | undefined {
  if (typeof level === "number") return LEVEL_NAMES[level] ?? String(level);
  return typeof level === "string" ? level : undefined;
}

/** An error object as the agent's logger writes it: its message (and its cause's), no stack. */
function errorText(value: unknown): string | undefined {
  if (typeof value !== "object" || value === null || !("message" in value)) return undefined;
  const { message, cause } = value as { message: unknown; cause?: unknown };
  const causeText = errorText(cause);
  return `${String(message)}${causeText ? `: ${causeText}` : ""}`;
}

function valueText(value: unknown): string {
  const text = typeof value === "string" ? value : (errorText(value) ?? JSON.stringify(value));
  return text.length > MAX_VALUE_LENGTH ? `${text.slice(0, MAX_VALUE_LENGTH - 1)}…` : text;
}

/** The line to show for one line of a service's output, or undefined to show nothing. */
export function formatLogLine(line: string): string | undefined {
  if (!line.startsWith("{")) return line;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== "object" || record === null || !("msg" in record)) return line;
  const fields = record as Record<string, unknown>;
  if (typeof fields.msg === "string" && QUIET_MESSAGES.has(fields.msg)) return undefined;
  const level = levelName(fields.level);
  const component = typeof fields.component === "string" ? `[${fields.component}] ` : "";
  const rest = Object.entries(fields)
    .filter(([key, value]) => !OMITTED.has(key) && key !== "component" && value !== undefined)
    .map(([key, value]) => `${key}=${valueText(value)}`);
  const prefix = level === undefined || level === "info" ? "" : `${level.toUpperCase()} `;
  return `${prefix}${component}${String(fields.msg)}${rest.length > 0 ? `  ${rest.join(" ")}` : ""}`;
}
