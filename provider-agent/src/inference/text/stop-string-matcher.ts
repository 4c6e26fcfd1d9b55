/**
 * Finds stop strings in streamed text, including one split across tokens: text that could be the start
 * of a stop string is held back until it is known not to be. The stop string itself is never emitted.
 */
export interface MatchResult {
  /** Text that is safe to emit now. */
  text: string;
  /** A stop string was found; `text` ends just before it and generation should end. */
  stopped: boolean;
}

export class StopStringMatcher {
  private readonly stops: string[];
  private held = "";

  constructor(stops: readonly string[]) {
    this.stops = [...new Set(stops.filter((stop) => stop.length > 0))];
  }

  push(text: string): MatchResult {
    const buffer = this.held + text;
    let stopAt = -1;
    for (const stop of this.stops) {
      const index = buffer.indexOf(stop);
      if (index >= 0 && (stopAt < 0 || index < stopAt)) stopAt = index;
    }
    if (stopAt >= 0) {
      this.held = "";
      return { text: buffer.slice(0, stopAt), stopped: true };
    }
    let keep = this.longestStopPrefixSuffix(buffer);
    // Never end the emitted text between the two halves of a surrogate pair.
    const cut = buffer.length - keep;
    if (keep > 0 && cut > 0 && isHighSurrogate(buffer.charCodeAt(cut - 1))) keep++;
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** The held-back text, once no more will come (it was not a stop string after all). */
  flush(): string {
    const text = this.held;
    this.held = "";
    return text;
  }

  /** Length of the longest end of `buffer` that is the beginning of some stop string. */
  private longestStopPrefixSuffix(buffer: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let length = Math.min(stop.length - 1, buffer.length); length > longest; length--) {
        if (buffer.endsWith(stop.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
