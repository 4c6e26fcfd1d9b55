/** Parsing of command arguments: amounts, prices, model ids or names, session ids. */
import { type Address, type Hex, getAddress, isAddress } from "viem";
import { InvalidArgumentError } from "../errors.js";
import type { MarketClient } from "../market-client.js";

const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

export function bytes32(text: string, argument: string): Hex {
  if (!BYTES32.test(text))
    throw new InvalidArgumentError(argument, `${JSON.stringify(text)} is not 32 bytes of 0x-hex`);
  return text.toLowerCase() as Hex;
}

/** A price in base units of the token (an integer). */
export function basePrice(text: string | boolean | undefined, flag: string): bigint {
  if (typeof text !== "string" || !/^[0-9]+$/.test(text)) {
    throw new InvalidArgumentError(
      `--${flag}`,
      `expected a price in base units (a whole number), got ${JSON.stringify(text ?? "")}`,
    );
  }
  return BigInt(text);
}

/** A positive integer option. */
export function positiveInteger(
  text: string | boolean | undefined,
  flag: string,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (text === undefined) return fallback;
  if (typeof text !== "string" || !/^[0-9]+$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new InvalidArgumentError(
      `--${flag}`,
      `expected a whole number from 1 to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

/** A model given by id (0x…, 32 bytes) or by its registered name. */
export async function resolveModel(market: MarketClient, text: string): Promise<Hex> {
  if (BYTES32.test(text)) return text.toLowerCase() as Hex;
  if (text.startsWith("0x"))
    throw new InvalidArgumentError("model", `${text} is neither a model id (32 bytes of hex) nor a name`);
  const models = (await market.listModels()).filter((model) => model.active);
  const matches = models.filter((model) => model.name.toLowerCase() === text.toLowerCase());
  if (matches.length === 1) return matches[0]!.modelId;
  if (matches.length > 1) {
    throw new InvalidArgumentError("model", `${matches.length} models are named ${text}`, {
      hint: `give the id: ${matches.map((model) => model.modelId).join(", ")}`,
    });
  }
  throw new InvalidArgumentError("model", `no active model named ${JSON.stringify(text)}`, {
    hint: models.length
      ? `models: ${models.map((model) => model.name).join(", ")} (\`market models\`)`
      : "no model is registered yet",
  });
}

/** An address; mixed case must carry a valid EIP-55 checksum (a typo is caught, not sent). */
export function address(text: string, argument: string): Address {
  const given: string = text;
  if (!isAddress(text, { strict: false })) {
    throw new InvalidArgumentError(argument, `${JSON.stringify(given)} is not an address (0x and 40 hex digits)`);
  }
  if (!isAddress(given, { strict: true })) {
    throw new InvalidArgumentError(argument, `${given} has a wrong checksum (its upper/lower case does not match)`, {
      hint: "check the address for a typo; written all in lower case it is taken without a checksum",
    });
  }
  return getAddress(text);
}
