/**
 * What the `provider-agent` commands do: read the config and the keys, then start (and listen until
 * SIGTERM/SIGINT), claim, or check. Exit codes: 0 done, 1 failed (the reason is logged), 2 bad usage.
 */
import { startAgent } from "./agent.js";
import { resolveAddresses } from "./chain/addresses.js";
import { createChainClients, fetchChainId } from "./chain/clients.js";
import { MarketReader } from "./chain/market.js";
import { TransactionSender, describeChainError } from "./chain/transactions.js";
import { type AgentConfig, loadConfig } from "./config/load.js";
import { type AgentKeys, loadKeys } from "./keys/load.js";
import { Logger } from "./log/logger.js";
import { claimEarnings } from "./settlement/claim.js";

/** Masks every secret the environment holds for this config in the logger's output. */
function redactSecrets(logger: Logger, config: AgentConfig, env: NodeJS.ProcessEnv): void {
  const names = [
    config.keys.providerKeyEnv,
    config.keys.operatorKeyEnv,
    config.keys.providerKeystore?.passwordEnv,
    config.keys.operatorKeystore?.passwordEnv,
  ];
  for (const name of names) {
    const value = name === undefined ? undefined : env[name];
    if (value) logger.redact(value.trim());
  }
}

async function configAndKeys(configPath: string, env: NodeJS.ProcessEnv) {
  const config = loadConfig(configPath);
  const logger = Logger.create({ level: config.log.level });
  redactSecrets(logger, config, env);
  const keys: AgentKeys = await loadKeys(config.keys, env);
  return { config, logger, keys };
}

/** `provider-agent start`: runs until SIGTERM or SIGINT, then drains and exits 0. */
export async function runStart(configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { config, logger, keys } = await configAndKeys(configPath, env);
  const agent = await startAgent({ config, keys, logger, processMetrics: true });
  let signalled = false;
  const finished = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) return;
      signalled = true;
      logger.info({ signal, graceSeconds: config.server.shutdownGraceSeconds }, "shutting down");
      agent.stop().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ err: error }, "shutdown failed");
          resolve(1);
        },
      );
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  try {
    await agent.ready;
  } catch {
    await agent.stop({ graceMs: 0 });
    return 1;
  }
  return finished;
}

/** `provider-agent claim`: claims the provider's escrow balance now (needs the provider key). */
export async function runClaim(configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { config, logger, keys } = await configAndKeys(configPath, env);
  if (!keys.provider) {
    logger.error("claiming needs the provider key: escrow pays out the caller's own balance");
    return 1;
  }
  const chainId = await fetchChainId(config.chain.rpcUrls);
  const addresses = resolveAddresses(config, chainId);
  const clients = createChainClients(chainId, config.chain.rpcUrls, config.chain.pollIntervalMs);
  try {
    const reader = new MarketReader(clients.publicClient, addresses);
    const sender = new TransactionSender(clients.publicClient, clients.walletFor(keys.provider), logger);
    const amount = await claimEarnings(reader, sender, 1n, logger);
    process.stdout.write(`${JSON.stringify({ claimed: amount.toString(), provider: keys.provider.address })}\n`);
    return 0;
  } catch (error) {
    logger.error({ err: describeChainError(error) }, "claim failed");
    return 1;
  } finally {
    await clients.close();
  }
}

/** `provider-agent check`: validates the config and the keys, prints the summary (no key). */
export async function runCheck(configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { config, keys } = await configAndKeys(configPath, env);
  process.stdout.write(
    `${JSON.stringify({
      ok: true,
      provider: keys.providerAddress,
      operator: keys.operator?.address ?? null,
      mode: keys.provider && config.provider.manageOnChain ? "manage" : "verify",
      models: config.models.map((model) => model.name),
    })}\n`,
  );
  return 0;
}
