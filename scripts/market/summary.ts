/**
 * What `npm start` prints once the market runs: where each service is, the dev accounts by role,
 * and the `market` commands to try next with the environment they need.
 */
import type { Address, Hex } from "viem";
import type { DevAccount } from "../local-chain";

export interface RunningMarket {
  startedIn: string;
  rpcUrl: string;
  wsUrl: string;
  chainId: number;
  indexerUrl: string;
  agentUrl: string;
  model: { name: string; id: Hex };
  bidId: Hex;
  /** Paths as the user should read them (relative to the working directory when inside it). */
  deploymentFile: string;
  runDir: string;
  sessionStoreDir: string;
  /** Whether the deployment is Ignition's default chain-31337 (what the CLI and tasks find unasked). */
  defaultDeployment: boolean;
  accounts: {
    governance: Address;
    provider: Address;
    operator: Address;
    demoConsumer: Address;
    /** A funded account for the user, key included (a public dev key). */
    yours: DevAccount;
  };
}

export function marketSummary(market: RunningMarket): string {
  const { accounts } = market;
  const cliEnv = [
    `MARKET_RPC_URL=${market.rpcUrl}`,
    `MARKET_INDEXER_URL=${market.indexerUrl}/graphql`,
    `MARKET_PRIVATE_KEY=${accounts.yours.privateKey}`,
    `MARKET_STORE_DIR=${market.sessionStoreDir}`,
    ...(market.defaultDeployment ? [] : [`MARKET_DEPLOYMENT=${market.deploymentFile}`]),
  ];
  const taskOptions = market.defaultDeployment
    ? ""
    : `   (with LOCALHOST_RPC_URL=${market.rpcUrl} and --deployment ${market.deploymentFile})`;
  return [
    "",
    `== the market is running (started in ${market.startedIn})`,
    `  RPC             ${market.rpcUrl} (chain ${market.chainId}; websocket ${market.wsUrl})`,
    `  GraphQL         ${market.indexerUrl}/graphql (GraphiQL in a browser); ${market.indexerUrl}/ready, ${market.indexerUrl}/metrics`,
    `  provider agent  ${market.agentUrl}: API docs ${market.agentUrl}/docs, metrics ${market.agentUrl}/metrics, health ${market.agentUrl}/health`,
    `  model           ${market.model.name} ${market.model.id}`,
    `  bid             ${market.bidId}`,
    `  contracts       ${market.deploymentFile}`,
    `  run dir         ${market.runDir} (agent.yaml, indexer.yaml, data, logs/)`,
    "  accounts        Hardhat's public dev keys, never for a real network:",
    `    0 governance and treasury ${accounts.governance}`,
    `    1 provider                ${accounts.provider}   2 its operator ${accounts.operator}`,
    `    3 the consumer above      ${accounts.demoConsumer}`,
    `    4 yours to try            ${accounts.yours.address} (1,000,000 tokens)`,
    "",
    "try it from another terminal:",
    `  export ${cliEnv.join(" \\\n         ")}`,
    "  npx market models",
    `  npx market rank ${market.model.name}`,
    `  npx market chat ${market.model.name} "Hello there"`,
    "  npx market sessions",
    "  npx market close <session id>",
    "  npx market balance",
    `  npx hardhat --network localhost market:provider --address ${accounts.provider}${taskOptions}`,
    "",
  ].join("\n");
}
