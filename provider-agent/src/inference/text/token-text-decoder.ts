/**
 * Turns generated tokens into text as they come, without ever splitting a character: a token that ends
 * inside a multi-byte UTF-8 character yields "" until the tokens completing it arrive. Bytes that never
 * form a character (a random-weight model emits plenty) come out as U+FFFD; nothing here throws on them.
 */

/** Detokenizes `tokens` as the continuation of `precedingTokens` (which matter for leading spaces). */
export type Detokenize<Token> = (tokens: readonly Token[], precedingTokens: readonly Token[]) => string;

const REPLACEMENT_CHARACTER = "\uFFFD";
/** A UTF-8 character has at most 4 bytes, so 4 byte tokens either complete one or never will. */
const MAX_PENDING_TOKENS = 4;
const PRECEDING_TOKENS_KEPT = 8;

export class TokenTextDecoder<Token = number> {
  private pending: Token[] = [];
  private preceding: Token[];

  constructor(
    private readonly detokenize: Detokenize<Token>,
    promptTokens: readonly Token[],
  ) {
    this.preceding = promptTokens.slice(-PRECEDING_TOKENS_KEPT);
  }

  /** The text `token` completes: "" while a character is still incomplete. */
  push(token: Token): string {
    this.pending.push(token);
    const text = this.detokenize(this.pending, this.preceding);
    // A trailing U+FFFD is how an incomplete character decodes; wait for more tokens unless it cannot complete.
    if (text.endsWith(REPLACEMENT_CHARACTER) && this.pending.length < MAX_PENDING_TOKENS) return "";
    this.commit();
    return text;
  }

  /** Whatever is still pending, with U+FFFD for an unfinished character (at the end of a generation). */
  flush(): string {
    if (this.pending.length === 0) return "";
    const text = this.detokenize(this.pending, this.preceding);
    this.commit();
    return text;
  }

  private commit(): void {
    this.preceding = [...this.preceding, ...this.pending].slice(-PRECEDING_TOKENS_KEPT);
    this.pending = [];
  }
}
