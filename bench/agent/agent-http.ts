/**
 * The provider agent measured as its consumers meet it: streaming `POST /v1/completions` over HTTP
 * (loopback) to a whole agent started in this process on port 0, with a real session on a local
 * chain for its auth. Everything the agent adds on top of the engine is in the path: fastify, the
 * bearer token's check, the session's credit rule and metering, the OpenAI response format, SSE.
 *
 * The bid prices time only, so the session needs no receipts (the bench measures the agent, not a
 * client's signing), and one session carries every stream (the fair queue orders waiting requests
 * only; with no more streams than the model's parallel sequences, none waits).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

import type { Llama } from "node-llama-cpp";

import { bidIdOf } from "../../protocol/index.js";
import { startAgent } from "../../provider-agent/src/agent.js";
import { parseConfig } from "../../provider-agent/src/config/load.js";
import { serverSentEventData } from "../../provider-agent/src/inference/upstream/server-sent-events.js";
import { keysFromAccounts } from "../../provider-agent/src/keys/load.js";
import { Logger } from "../../provider-agent/src/log/logger.js";
import { TestConsumer } from "../../provider-agent/test/support/consumer.js";
import { startTestMarket } from "../../provider-agent/test/support/market.js";
import type { BenchTarget, StreamRun } from "./measure.js";
import type { TargetOptions } from "./targets.js";

/** Time only: 1e9 base units a second (a session of an hour costs 3.6e12 of a 1e18 deposit). */
const PRICE_PER_SECOND = 1_000_000_000n;
const SESSION_SECONDS = 3_600;

interface CompletionChunk {
  choices?: { text?: string }[];
  usage?: { completion_tokens?: number } | null;
}

/** One streamed completion; its first token's time is counted from `started`. */
async function streamCompletion(
  url: string,
  token: string,
  body: Record<string, unknown>,
  started: number,
): Promise<StreamRun> {
  const response = await fetch(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!response.ok || !response.body) {
    throw new Error(`the agent answered HTTP ${response.status}: ${await response.text()}`);
  }
  let ttftMs = 0;
  let tokens = 0;
  for await (const data of serverSentEventData(response.body as AsyncIterable<Uint8Array>)) {
    if (data.trim() === "[DONE]") break;
    const chunk = JSON.parse(data) as CompletionChunk & { error?: { message: string } };
    if (chunk.error) throw new Error(`the agent's stream failed: ${chunk.error.message}`);
    if (ttftMs === 0 && chunk.choices?.[0]?.text !== undefined) ttftMs = performance.now() - started;
    if (chunk.usage?.completion_tokens !== undefined) tokens = chunk.usage.completion_tokens;
  }
  return { tokens, ttftMs };
}

/** A local market, an agent serving `options.modelPath` on it, and an open session. */
export async function agentHttpTarget(llama: Llama, options: TargetOptions): Promise<BenchTarget> {
  const market = await startTestMarket();
  const dataDir = await mkdtemp(join(tmpdir(), "bench-agent-http-"));
  const cleanUp = async () => {
    await market.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const config = parseConfig(
      {
        chain: { rpcUrls: [market.chain.rpcUrl], confirmations: 0, pollIntervalMs: 1_000 },
        deployment: { addressesFile: resolve(market.chain.deploymentDir, "deployed_addresses.json") },
        server: { host: "127.0.0.1", port: 0, rateLimitPerIp: 0, rateLimitPerSession: 0, docs: false },
        provider: { topUpStake: true },
        models: [
          {
            name: "bench",
            file: options.modelPath,
            register: { name: "bench" },
            bid: { pricePerSecond: PRICE_PER_SECOND.toString() },
            contextSize: options.contextSize,
            parallel: options.maxStreams,
            threads: options.threads,
            gpu: "off",
            maxTokens: options.contextSize - 1,
          },
        ],
        settlement: { claimIntervalSeconds: 0 },
        dataDir,
      },
      dataDir,
      "bench agent",
    );
    const { provider, operator, user } = market.accounts;
    const agent = await startAgent({
      config,
      keys: keysFromAccounts({ provider, operator }),
      logger: Logger.create({ level: "silent" }),
      llama,
      maxThreads: options.threads,
    });
    const stopAgent = () => agent.stop({ graceMs: 1_000 });
    try {
      const parts = await agent.ready;
      const modelId = parts.catalog[0]!.id;
      const consumer = new TestConsumer(market, user);
      const session = await consumer.open(agent.url, bidIdOf(provider.address, modelId), 10n ** 18n, SESSION_SECONDS);
      const token = await consumer.token(session.sessionId, SESSION_SECONDS);
      return {
        name: "agent over HTTP",
        // The agent runs in this process: its CPU time (and the HTTP client's) is this process's.
        inProcess: true,
        run(streams, tokens) {
          const body = {
            model: modelId,
            prompt: options.prompt,
            max_tokens: tokens,
            temperature: 0,
            stream: true,
            stream_options: { include_usage: true },
          };
          const started = performance.now();
          return Promise.all(Array.from({ length: streams }, () => streamCompletion(agent.url, token, body, started)));
        },
        close: async () => {
          await stopAgent();
          await cleanUp();
        },
      };
    } catch (error) {
      await stopAgent();
      throw error;
    }
  } catch (error) {
    await cleanUp();
    throw error;
  }
}
