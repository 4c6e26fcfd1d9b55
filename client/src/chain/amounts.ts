/** Token amounts: base units (bigint) in and out of decimal text such as "1.5". */
import { InvalidArgumentError } from "../errors.js";

export interface TokenInfo {
  name: string;
  symbol: string;
  decimals: number;
}

/** `amount` base units as "1.5 INFER" (no trailing zeros). */
export function formatAmount(amount: bigint, token: Pick<TokenInfo, "symbol" | "decimals">): string {
  const negative = amount < 0n;
  const units = (negative ? -amount : amount).toString().padStart(token.decimals + 1, "0");
  const whole = units.slice(0, units.length - token.decimals);
  const fraction = units.slice(units.length - token.decimals).replace(/0+$/, "");
  return `${negative ? "-" : ""}${whole}${fraction ? `.${fraction}` : ""} ${token.symbol}`;
}

/** Decimal text ("1.5", "100") as base units; at most `decimals` fraction digits, never negative. */
export function parseAmount(text: string, decimals: number, argument = "amount"): bigint {
  const trimmed = text.trim();
  const match = /^([0-9]+)(?:\.([0-9]+))?$/.exec(trimmed);
  if (!match) {
    throw new InvalidArgumentError(argument, `${JSON.stringify(text)} is not an amount (expected e.g. 10 or 1.5)`);
  }
  const fraction = match[2] ?? "";
  if (fraction.length > decimals) {
    throw new InvalidArgumentError(argument, `${text} has more than ${decimals} decimals`, {
      hint: `the token has ${decimals} decimals: give at most ${decimals} digits after the point`,
    });
  }
  return BigInt(match[1]!) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, "0") || "0");
}

/** A duration: plain seconds, or a number with s/m/h/d ("90s", "30m", "2h", "1d"). */
export function parseDuration(text: string, argument = "duration"): number {
  const match = /^([0-9]+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!match) {
    throw new InvalidArgumentError(argument, `${JSON.stringify(text)} is not a duration (e.g. 3600, 90m, 2h, 1d)`);
  }
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[(match[2] ?? "s") as "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}
