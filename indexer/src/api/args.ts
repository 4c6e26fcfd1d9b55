/**
 * Checks of GraphQL arguments. A bad argument is a GraphQLError naming the argument and the value,
 * so the client sees exactly what to fix (these errors are never masked).
 */
import { GraphQLError } from "graphql";
import { getAddress, isAddress } from "viem";

export function badInput(message: string, argument: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT", argument } });
}

/** A checksummed address (the form rows are stored in), from any case. */
export function addressArg(value: string, argument: string): string {
  if (!isAddress(value, { strict: false })) throw badInput(`${argument} is not an address: "${value}"`, argument);
  return getAddress(value);
}

export function optionalAddressArg(value: string | null | undefined, argument: string): string | undefined {
  return value === null || value === undefined ? undefined : addressArg(value, argument);
}

/** A 32-byte id (model, bid, session), lowercase as stored. */
export function bytes32Arg(value: string, argument: string): string {
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw badInput(`${argument} is not a 32-byte hex id: "${value}"`, argument);
  return value.toLowerCase();
}

export function optionalBytes32Arg(value: string | null | undefined, argument: string): string | undefined {
  return value === null || value === undefined ? undefined : bytes32Arg(value, argument);
}

/** `first`: 0 … maxFirst (the list-size plugin refuses larger values before execution as well). */
export function firstArg(value: number | null | undefined, maxFirst: number, fallback = 100): number {
  const first = value ?? fallback;
  if (!Number.isInteger(first) || first < 0 || first > maxFirst) {
    throw badInput(`first must be between 0 and ${maxFirst} (got ${first})`, "first");
  }
  return first;
}
