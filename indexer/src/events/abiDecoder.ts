/**
 * Decoders compiled once per event from its ABI. Static parameters (integers, addresses, booleans,
 * fixed bytes, tuples of those) are read straight from the 32-byte words of the log; anything
 * dynamic (strings, arrays) goes through viem's `decodeAbiParameters`. Values have exactly viem's
 * shapes — uint up to 48 bits as number, wider as bigint, checksummed addresses — so the event
 * types derived from the ABI hold either way.
 *
 * Why not viem's `decodeEventLog` for everything: it hashes the event signature and checksums
 * every address on every log, which made decoding the largest cost of a backfill.
 */
import { type AbiParameter, type Address, type Hex, decodeAbiParameters, getAddress } from "viem";

/** Reads one static value from `hex` (no 0x) at word `index`, returning the value and the next word index. */
type StaticReader = (hex: string, index: number) => [unknown, number];

const WORD = 64;

const checksums = new Map<string, Address>();
const CHECKSUM_CACHE_LIMIT = 100_000;

/** getAddress with a cache: a market's logs repeat the same few thousand addresses. */
export function checksummed(lowercase: string): Address {
  let address = checksums.get(lowercase);
  if (address === undefined) {
    if (checksums.size >= CHECKSUM_CACHE_LIMIT) checksums.clear();
    address = getAddress(lowercase);
    checksums.set(lowercase, address);
  }
  return address;
}

const word = (hex: string, index: number) => {
  const value = hex.slice(index * WORD, (index + 1) * WORD);
  if (value.length !== WORD) throw new RangeError(`the log is shorter than its ABI (word ${index})`);
  return value;
};

function integerReader(type: string): StaticReader | null {
  const match = /^(u?)int(\d*)$/.exec(type);
  if (match === null) return null;
  const bits = match[2] === "" ? 256 : Number(match[2]);
  const signed = match[1] === "";
  const asNumber = bits <= 48;
  return (hex, index) => {
    let value = BigInt(`0x${word(hex, index)}`);
    if (signed && value >= 1n << BigInt(bits - 1)) value -= 1n << 256n;
    return [asNumber ? Number(value) : value, index + 1];
  };
}

/** A reader for a static parameter, or null when the parameter is dynamic. */
function staticReader(parameter: AbiParameter): StaticReader | null {
  const { type } = parameter;
  if (type === "address") return (hex, index) => [checksummed(`0x${word(hex, index).slice(24)}`), index + 1];
  if (type === "bool") return (hex, index) => [BigInt(`0x${word(hex, index)}`) !== 0n, index + 1];
  const bytes = /^bytes(\d+)$/.exec(type);
  if (bytes !== null) {
    const length = Number(bytes[1]) * 2;
    return (hex, index) => [`0x${word(hex, index).slice(0, length)}`, index + 1];
  }
  const integer = integerReader(type);
  if (integer !== null) return integer;
  if (type === "tuple" && "components" in parameter) {
    const components = parameter.components.map((component) => ({
      name: component.name!,
      read: staticReader(component),
    }));
    if (components.some((component) => component.read === null || component.name === "")) return null;
    return (hex, start) => {
      const value: Record<string, unknown> = {};
      let index = start;
      for (const component of components) [value[component.name], index] = component.read!(hex, index);
      return [value, index];
    };
  }
  return null;
}

/** Decodes the named parameters of an ABI event's data (and, by the same means, of its topics). */
export function compileParameters(parameters: readonly AbiParameter[]): (hex: Hex) => Record<string, unknown> {
  const readers = parameters.map((parameter) => ({ name: parameter.name!, read: staticReader(parameter) }));
  if (readers.some((reader) => reader.read === null)) {
    return (hex) => {
      const values = decodeAbiParameters(parameters, hex);
      return Object.fromEntries(parameters.map((parameter, index) => [parameter.name!, values[index]]));
    };
  }
  return (hex) => {
    const body = hex.slice(2);
    const out: Record<string, unknown> = {};
    let index = 0;
    for (const reader of readers) [out[reader.name], index] = reader.read!(body, index);
    return out;
  };
}

/** Decodes one indexed parameter from its topic (static types only carry their value in a topic). */
export function compileTopic(parameter: AbiParameter): (topic: Hex) => unknown {
  const read = staticReader(parameter);
  // A dynamic indexed parameter is only its hash: the topic itself.
  if (read === null) return (topic) => topic;
  return (topic) => read(topic.slice(2), 0)[0];
}
