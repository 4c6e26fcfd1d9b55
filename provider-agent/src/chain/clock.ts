/**
 * Chain time: what `block.timestamp` will about be now. The wall clock, unless the chain runs ahead
 * of it (a test chain whose time was moved forward, a sequencer with a fast clock): then the latest
 * block's timestamp plus the wall time since it was seen. Sessions open, end and cost by chain time.
 */
export class ChainClock {
  private offsetSeconds = 0;

  constructor(private readonly wallClock: () => number = () => Date.now() / 1000) {}

  /** Unix seconds (fractional). */
  now(): number {
    return this.wallClock() + this.offsetSeconds;
  }

  /** A block with `timestamp` was just seen. */
  observe(timestamp: bigint | number): void {
    const ahead = Number(timestamp) - this.wallClock();
    if (ahead > this.offsetSeconds) this.offsetSeconds = ahead;
  }
}
