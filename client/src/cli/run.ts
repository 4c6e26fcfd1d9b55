/**
 * The `market` command line: finds the command, refuses secrets in flags, parses and validates the
 * options and the configuration, connects, runs, and turns failures into a message and an exit code.
 */
import { parseArgs } from "node:util";
import { InvalidArgumentError } from "../errors.js";
import { type MarketClient, createMarketClient } from "../market-client.js";
import { WALLET_ENV_HELP, accountFromEnv, requireAccountFromEnv } from "../wallet/load-account.js";
import type { Command, OptionSpec } from "./command.js";
import { chatCommand, closeCommand, sessionsCommand, statusCommand, topUpCommand } from "./commands/sessions.js";
import { modelsCommand, rankCommand } from "./commands/models.js";
import {
  bidDeleteCommand,
  bidPostCommand,
  bidUpdateCommand,
  providerStatusCommand,
  stakeCommand,
  unstakeCommand,
} from "./commands/provider.js";
import { balanceCommand, claimCommand } from "./commands/wallet.js";
import { loadCliConfig } from "./config.js";
import { EXIT, reportError } from "./errors.js";
import { createOutput } from "./output.js";
import { spinnerProgress } from "./spinner.js";

export const COMMANDS: Command[] = [
  modelsCommand,
  rankCommand,
  chatCommand,
  sessionsCommand,
  statusCommand,
  topUpCommand,
  closeCommand,
  claimCommand,
  balanceCommand,
  providerStatusCommand,
  bidPostCommand,
  bidUpdateCommand,
  bidDeleteCommand,
  stakeCommand,
  unstakeCommand,
];

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  "rpc-url": {
    type: "string",
    description: "JSON-RPC URL (MARKET_RPC_URL; default http://127.0.0.1:8545)",
    placeholder: "URL",
  },
  "indexer-url": { type: "string", description: "the indexer's GraphQL URL (MARKET_INDEXER_URL)", placeholder: "URL" },
  deployment: {
    type: "string",
    description: "deployed_addresses.json (MARKET_DEPLOYMENT; default: Ignition's for the chain)",
    placeholder: "PATH",
  },
  "store-dir": {
    type: "string",
    description: "session store (MARKET_STORE_DIR; default ~/.inference-market/sessions)",
    placeholder: "DIR",
  },
  json: { type: "boolean", description: "print JSON for scripts" },
  help: { type: "boolean", description: "show help" },
};

/** Flags that would carry a secret: refused by name, before anything is parsed. */
const SECRET_FLAG =
  /^--?(private[-_]?key|key|mnemonic|seed|password|keystore[-_]password|store[-_]password|secret)(=|$)/i;

export interface CliIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

function optionUsage(options: Record<string, OptionSpec>): string {
  return Object.entries(options)
    .map(
      ([name, spec]) =>
        `    --${name}${spec.type === "string" ? ` ${spec.placeholder ?? "VALUE"}` : ""}`.padEnd(34) + spec.description,
    )
    .join("\n");
}

export function helpText(command?: Command): string {
  if (command) {
    return [
      `market ${command.words.join(" ")} ${command.arguments}`.trimEnd(),
      `  ${command.summary}`,
      ...(command.options ? ["  options:", optionUsage(command.options)] : []),
      "  global options:",
      optionUsage(GLOBAL_OPTIONS),
    ].join("\n");
  }
  const width = Math.max(...COMMANDS.map((c) => `${c.words.join(" ")} ${c.arguments}`.length)) + 2;
  return [
    "market: the Inference Market's consumer and provider command line",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${`${c.words.join(" ")} ${c.arguments}`.padEnd(width)}${c.summary}`),
    "",
    "global options:",
    optionUsage(GLOBAL_OPTIONS),
    "",
    `keys come from the environment only: ${WALLET_ENV_HELP}.`,
    "MARKET_STORE_PASSWORD, if set, encrypts the session store (else a key derived from the wallet's signature does).",
    "`market <command> --help` shows a command's options.",
  ].join("\n");
}

function findCommand(argv: string[]): { command: Command | undefined; rest: string[] } {
  const words: string[] = [];
  for (const token of argv) {
    if (token.startsWith("-")) break;
    words.push(token);
  }
  let best: Command | undefined;
  for (const command of COMMANDS) {
    const matches = command.words.every((word, index) => words[index] === word);
    if (matches && (!best || command.words.length > best.words.length)) best = command;
  }
  if (!best) return { command: undefined, rest: argv };
  const rest = [...argv];
  rest.splice(argv.indexOf(best.words[0]!), best.words.length);
  return { command: best, rest };
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const json = argv.includes("--json");
  let fallbackHint = "`market --help` lists the commands and their arguments";
  try {
    const secret = argv.find((token) => SECRET_FLAG.test(token));
    if (secret !== undefined) {
      throw new InvalidArgumentError(
        secret.split("=")[0]!,
        "keys and passwords are never taken from flags (they would land in shell history and in `ps`)",
        {
          hint: WALLET_ENV_HELP,
        },
      );
    }
    const { command, rest } = findCommand(argv);
    if (!command) {
      if (argv.length === 0 || argv.includes("--help") || argv[0] === "help") {
        io.stdout.write(`${helpText()}\n`);
        return argv.length === 0 ? EXIT.usage : EXIT.ok;
      }
      throw new InvalidArgumentError(
        "command",
        `unknown command ${JSON.stringify(argv.filter((token) => !token.startsWith("-")).join(" "))}`,
        {
          hint: "`market --help` lists the commands",
        },
      );
    }
    fallbackHint = `\`market ${command.words.join(" ")} --help\` shows its arguments and options`;
    let parsed;
    try {
      parsed = parseArgs({
        args: rest,
        options: Object.fromEntries(
          Object.entries({ ...GLOBAL_OPTIONS, ...command.options }).map(([name, spec]) => [name, { type: spec.type }]),
        ),
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new InvalidArgumentError(
        `market ${command.words.join(" ")}`,
        (error as Error).message.split("\n")[0] ?? "",
        {
          hint: `usage: market ${command.words.join(" ")} ${command.arguments} (see --help)`,
        },
      );
    }
    const values = parsed.values as Record<string, string | boolean | undefined>;
    if (values.help === true) {
      io.stdout.write(`${helpText(command)}\n`);
      return EXIT.ok;
    }
    const { positionals } = parsed;
    if (positionals.length < command.positionals.min || positionals.length > command.positionals.max) {
      throw new InvalidArgumentError(
        `market ${command.words.join(" ")}`,
        `expected ${command.arguments || "no arguments"}`,
        {
          hint: `usage: market ${command.words.join(" ")} ${command.arguments}`,
        },
      );
    }
    const config = loadCliConfig(values, io.env);
    const account = command.wallet === "required" ? requireAccountFromEnv(io.env) : accountFromEnv(io.env);
    const output = createOutput({ json, stdout: io.stdout, stderr: io.stderr });
    let client: Promise<MarketClient> | undefined;
    await command.run({
      output,
      config,
      env: io.env,
      values,
      positionals,
      market: () =>
        (client ??= createMarketClient({
          rpcUrl: config.rpcUrl,
          ...(account ? { account } : {}),
          ...(config.indexerUrl ? { indexerUrl: config.indexerUrl } : {}),
          ...(config.deploymentPath ? { deploymentPath: config.deploymentPath } : {}),
          store: { dir: config.storeDir, ...(config.storePassword ? { password: config.storePassword } : {}) },
          progress: json ? undefined : spinnerProgress(io.stderr),
          pollingInterval: 250,
        })),
    });
    return EXIT.ok;
  } catch (error) {
    return reportError(error, io.stderr, json, fallbackHint);
  }
}
