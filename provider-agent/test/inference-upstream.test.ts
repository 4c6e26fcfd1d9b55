/**
 * The upstream backend against a real OpenAI-compatible HTTP server: the stand-in in support/ serves
 * the embedded engine on the tiny model in OpenAI's streaming wire format, as llama-server would.
 */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";

import type { EmbeddedEngine } from "../src/inference/embedded/embedded-engine.js";
import {
  BackendUnavailableError,
  InvalidRequestError,
  QueueFullError,
  UnknownModelError,
} from "../src/inference/errors.js";
import { UpstreamBackend, promptTokensUpperBound } from "../src/inference/upstream/upstream-backend.js";
import { MODEL_ID, chat, collect, request, startTinyEngine } from "./support/models.js";
import { type StandIn, startOpenAiStandIn } from "./support/openai-standin.js";

void describe("upstream backend", () => {
  let engine: EmbeddedEngine;
  let standIn: StandIn;
  let backend: UpstreamBackend;
  before(async () => {
    engine = await startTinyEngine({ parallel: 2, adapters: [] });
    standIn = await startOpenAiStandIn(engine);
    backend = new UpstreamBackend({
      baseUrl: `${standIn.url}/v1`,
      models: [{ id: "0xup", upstreamModel: MODEL_ID, contextSize: 512, parallel: 1, maxQueued: 2 }],
    });
    await backend.checkReachable();
  });
  after(async () => {
    await backend.close();
    await standIn.close();
    await engine.close();
  });

  const upstreamRequest = (...args: Parameters<typeof request>) => ({ ...request(...args), model: "0xup" });

  void it("streams a chat completion with the upstream's exact token counts", async () => {
    const direct = await collect(await engine.generate(request(chat("Hello"), { maxTokens: 12, stop: ["zz"] })));
    const { text, chunks, result } = await collect(
      await backend.generate(upstreamRequest(chat("Hello"), { maxTokens: 12, stop: ["zz"] })),
    );
    assert.equal(text, direct.text);
    assert.equal(result.inputTokens, direct.result.inputTokens);
    assert.equal(result.outputTokens, direct.result.outputTokens);
    assert.equal(result.finishReason, direct.result.finishReason);
    assert.equal(chunks.at(-1)?.outputTokens, result.outputTokens);
    assert.ok(result.ttftMs > 0 && result.ttftMs <= result.durationMs);
    assert.equal(standIn.received.at(-1), "/v1/chat/completions");
  });

  void it("forwards text completions, JSON schemas and seeds", async () => {
    const text = await collect(
      await backend.generate(upstreamRequest({ kind: "text", text: "Once" }, { maxTokens: 5 })),
    );
    assert.equal(standIn.received.at(-1), "/v1/completions");
    assert.deepEqual([text.result.inputTokens, text.result.outputTokens, text.result.finishReason], [5, 5, "length"]);

    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"] };
    const json = await collect(
      await backend.generate(upstreamRequest(chat("JSON"), { maxTokens: 100, jsonSchema: schema })),
    );
    assert.equal(typeof (JSON.parse(json.text) as { ok: unknown }).ok, "boolean");

    const sampled = async (): Promise<string> =>
      (await collect(await backend.generate(upstreamRequest(chat("Hi"), { maxTokens: 10, temperature: 1, seed: 11 }))))
        .text;
    assert.equal(await sampled(), await sampled());
  });

  void it("stops the upstream when the signal aborts, with the running counts", async () => {
    const controller = new AbortController();
    const generation = await backend.generate(
      upstreamRequest(chat("Long"), { maxTokens: 400 }, { signal: controller.signal }),
    );
    for await (const chunk of generation) if (chunk.outputTokens >= 5) controller.abort();
    const result = await generation.result;
    assert.equal(result.finishReason, "abort");
    assert.ok(result.outputTokens >= 5 && result.outputTokens < 400);
    assert.ok(result.inputTokens > 0);
    // The stand-in saw the connection close and aborted its own generation: its sequence is free again.
    for (let wait = 0; wait < 50 && engine.status().models[0]?.activeSequences !== 0; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(engine.status().models[0]?.activeSequences, 0);
  });

  void it("caps concurrency with its own fair queue, and refuses past the cap", async () => {
    const first = await backend.generate(upstreamRequest(chat("one"), { maxTokens: 30 }, { queueKey: "a" }));
    const second = await backend.generate(upstreamRequest(chat("two"), { maxTokens: 3 }, { queueKey: "b" }));
    const third = await backend.generate(upstreamRequest(chat("three"), { maxTokens: 3 }, { queueKey: "c" }));
    assert.deepEqual(backend.status().models[0], { id: "0xup", loaded: true, activeSequences: 1, queued: 2 });
    await assert.rejects(backend.generate(upstreamRequest(chat("four"))), QueueFullError);
    for (const generation of [first, second, third])
      assert.equal((await collect(generation)).result.finishReason, "length");
  });

  void it("counts prompt tokens as an upper bound without a tokenizer, and refuses unknown models", async () => {
    const prompt = chat("Hello there");
    const bound = await backend.countPromptTokens("0xup", prompt);
    assert.equal(bound, promptTokensUpperBound(prompt));
    assert.ok(bound >= (await engine.countPromptTokens(MODEL_ID, prompt)));
    await assert.rejects(backend.countPromptTokens("0xnone", prompt), UnknownModelError);
    await assert.rejects(backend.generate({ ...request(prompt), model: "0xnone" }), UnknownModelError);
  });

  void it("passes the upstream's refusal of a bad request on as InvalidRequestError", async () => {
    const generation = await backend.generate(upstreamRequest(chat("x".repeat(600))));
    await assert.rejects(
      generation.result,
      (error: unknown) => error instanceof InvalidRequestError && /HTTP 400/.test(error.message),
    );
  });
});

void describe("upstream backend failures", () => {
  const servers: Server[] = [];
  after(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  async function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const backendAt = (
    baseUrl: string,
    timeouts: { responseTimeoutMs?: number; idleTimeoutMs?: number } = {},
  ): UpstreamBackend =>
    new UpstreamBackend({ baseUrl, models: [{ id: "0xup", contextSize: 512, parallel: 2 }], ...timeouts });
  const failure = async (backend: UpstreamBackend, pattern: RegExp): Promise<void> => {
    const generation = await backend.generate({ ...request(chat("x")), model: "0xup" });
    await assert.rejects(
      generation.result,
      (error: unknown) => error instanceof BackendUnavailableError && pattern.test(error.message),
    );
    await backend.close();
  };

  void it("maps an upstream server error to BackendUnavailableError", async () => {
    const url = await listen((_, response) =>
      response.writeHead(500, { "content-type": "application/json" }).end('{"error":{"message":"boom"}}'),
    );
    await failure(backendAt(url), /HTTP 500: boom/);
  });

  void it("maps an unreachable upstream to BackendUnavailableError, at start and per request", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(backendAt(url).checkReachable(), BackendUnavailableError);
    await failure(backendAt(url), /upstream failed/);
  });

  void it("times out an upstream that does not answer, or goes silent mid-stream", async () => {
    const silent = await listen(() => undefined);
    await failure(backendAt(silent, { responseTimeoutMs: 200 }), /no response within 200 ms/);
    const stalls = await listen((_, response) => {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.write(`data: ${JSON.stringify({ choices: [{ delta: { content: "a" } }] })}\n\n`);
    });
    await failure(backendAt(stalls, { idleTimeoutMs: 200 }), /silent for 200 ms/);
  });

  void it("refuses to guess when the upstream reports no usage", async () => {
    const engine = await startTinyEngine({ parallel: 1, adapters: [] });
    const standIn = await startOpenAiStandIn(engine, { omitUsage: true });
    try {
      const backend = new UpstreamBackend({
        baseUrl: standIn.url,
        models: [{ id: MODEL_ID, contextSize: 512, parallel: 1 }],
      });
      const generation = await backend.generate(request(chat("Hello"), { maxTokens: 4 }));
      const chunks = [];
      await assert.rejects(
        (async () => {
          for await (const chunk of generation) chunks.push(chunk);
        })(),
        (error: unknown) => error instanceof BackendUnavailableError && /no token usage/.test(error.message),
      );
      assert.equal(chunks.length, 4);
      await backend.close();
    } finally {
      await standIn.close();
      await engine.close();
    }
  });
});
