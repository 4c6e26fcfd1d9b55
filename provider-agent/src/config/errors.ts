/** A config that cannot be used, with every issue named by its path. */

export interface ConfigIssue {
  /** Where in the config: `models[0].bid.pricePerSecond`, `(yaml)`, `(file)`. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(`invalid config ${source}:\n` + issues.map((issue) => `  - ${issue.path}: ${issue.message}`).join("\n"));
    this.name = "ConfigError";
  }
}
