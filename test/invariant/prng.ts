/**
 * A seeded pseudo-random generator (mulberry32) and the draws the invariant run needs. The same
 * seed gives the same sequence of operations on every machine: no Math.random, no clock.
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next 32 random bits (mulberry32). */
  uint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor((this.uint32() / 2 ** 32) * (max - min + 1));
  }

  /** A uniform bigint in [min, max]; 128 random bits reduced modulo the span (bias far below 2^-60 here). */
  bigint(min: bigint, max: bigint): bigint {
    if (max < min) throw new Error(`empty range [${min}, ${max}]`);
    let bits = 0n;
    for (let i = 0; i < 4; i++) bits = (bits << 32n) | BigInt(this.uint32());
    return min + (bits % (max - min + 1n));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.uint32() / 2 ** 32 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[this.int(0, items.length - 1)];
  }

  /** One of `entries`, each drawn in proportion to its weight (weights ≤ 0 are never drawn). */
  weighted<T>(entries: readonly (readonly [T, number])[]): T {
    const total = entries.reduce((sum, [, weight]) => sum + Math.max(weight, 0), 0);
    let point = (this.uint32() / 2 ** 32) * total;
    for (const [item, weight] of entries) {
      if (weight <= 0) continue;
      if (point < weight) return item;
      point -= weight;
    }
    return entries.filter(([, weight]) => weight > 0).at(-1)![0];
  }
}

/** The seed from `INVARIANT_SEED` (decimal or 0x-hex), else a fixed default so CI runs are reproducible. */
export function seedFromEnv(defaultSeed: number): number {
  const raw = process.env.INVARIANT_SEED;
  if (raw === undefined || raw === "") return defaultSeed;
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new Error(`INVARIANT_SEED must be a uint32: ${raw}`);
  return seed;
}

/** The operation count from `INVARIANT_OPS`, else `defaultOps`. */
export function opsFromEnv(defaultOps: number): number {
  const raw = process.env.INVARIANT_OPS;
  if (raw === undefined || raw === "") return defaultOps;
  const ops = Number(raw);
  if (!Number.isInteger(ops) || ops <= 0) throw new Error(`INVARIANT_OPS must be a positive integer: ${raw}`);
  return ops;
}
