/** What a CLI command is: its words, options, how many arguments, and what it does. */
import type { MarketClient } from "../market-client.js";
import type { CliConfig } from "./config.js";
import type { Output } from "./output.js";

export type OptionSpec = { type: "string" | "boolean"; description: string; placeholder?: string };

export interface CommandContext {
  output: Output;
  config: CliConfig;
  env: NodeJS.ProcessEnv;
  /** Connects (once) to the market, with the wallet from the environment when the command needs one. */
  market: () => Promise<MarketClient>;
  /** The parsed options (global and the command's). */
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Command {
  words: string[];
  arguments: string;
  summary: string;
  options?: Record<string, OptionSpec>;
  positionals: { min: number; max: number };
  /** Whether the command sends transactions or uses sessions (needs MARKET_PRIVATE_KEY or a keystore). */
  wallet: "required" | "optional";
  run(context: CommandContext): Promise<void>;
}
