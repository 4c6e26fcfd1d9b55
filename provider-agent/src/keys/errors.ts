/** A key that cannot be loaded. The message names where it was looked for, never the key itself. */
export class KeyError extends Error {
  constructor(
    readonly source: string,
    detail: string,
  ) {
    super(`${source}: ${detail}`);
    this.name = "KeyError";
  }
}
