/**
 * The base of every error the indexer throws on purpose: a message a person can act on, and the
 * context (a block, a table, a config path…) as data, so logs and tests can read it.
 */
export class IndexerError extends Error {
  constructor(
    message: string,
    readonly context: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The message of anything thrown, for logs. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
