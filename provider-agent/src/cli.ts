/**
 * `provider-agent <command> --config agent.yaml`
 *
 *   start   run the agent (until SIGTERM/SIGINT)
 *   claim   claim the provider's escrow balance now
 *   check   validate the config and the keys, start nothing
 *
 * Keys come from the environment (PROVIDER_PRIVATE_KEY, OPERATOR_PRIVATE_KEY, or the variables the
 * config names) or encrypted keystores; never from the config file or the command line.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "./config/errors.js";
import { KeyError } from "./keys/errors.js";
import { runCheck, runClaim, runStart } from "./main.js";

const USAGE = `usage: provider-agent <start|claim|check> --config <agent.yaml>

  start   serve inference for the market (until SIGTERM or SIGINT)
  claim   claim the provider's escrow balance now (needs the provider key)
  check   validate the config and the keys

keys: $PROVIDER_PRIVATE_KEY and/or $OPERATOR_PRIVATE_KEY (or keystores, see agent.example.yaml)
`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.help || !command) {
    process.stdout.write(USAGE);
    return parsed.values.help ? 0 : 2;
  }
  const configPath = parsed.values.config;
  if (!configPath) {
    process.stderr.write(`--config is required\n\n${USAGE}`);
    return 2;
  }
  try {
    switch (command) {
      case "start":
        return await runStart(configPath);
      case "claim":
        return await runClaim(configPath);
      case "check":
        return await runCheck(configPath);
      default:
        process.stderr.write(`unknown command ${command}\n\n${USAGE}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof ConfigError || error instanceof KeyError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return 1;
  }
}

// Exit explicitly: a stopped agent leaves nothing to wait for, but a library's idle socket or timer
// must not keep the process (and a supervisor waiting for it) alive.
process.exit(await main(process.argv.slice(2)));
