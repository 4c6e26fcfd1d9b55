/**
 * The embedded engine on the tiny generated model: real llama.cpp, one thread, no GPU, greedy or
 * fixed seeds. Nothing is mocked.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import {
  BackendUnavailableError,
  InvalidRequestError,
  PromptTooLongError,
  UnknownModelError,
} from "../src/inference/errors.js";
import type { EmbeddedEngine } from "../src/inference/embedded/embedded-engine.js";
import {
  ADAPTER_ID,
  MODEL_ID,
  chat,
  collect,
  request,
  sharedLlama,
  startTinyEngine,
  testModels,
} from "./support/models.js";

/** Tokens of the ChatML text the tiny model's template gives: BOS, then one token per byte or marker. */
function chatMlTokenCount(content: string, system?: string): number {
  const bytes = (text: string): number => Buffer.byteLength(text);
  const turn = (role: string, text: string): number => 1 + bytes(`${role}\n`) + bytes(text) + 1 + 1;
  return 1 + (system === undefined ? 0 : turn("system", system)) + turn("user", content) + 1 + bytes("assistant\n");
}

/** No lone UTF-16 surrogate (String.prototype.isWellFormed, which ES2023's typings lack). */
function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

void describe("embedded engine", () => {
  let engine: EmbeddedEngine;
  before(async () => {
    engine = await startTinyEngine();
  });
  after(async () => {
    await engine.close();
  });

  void it("serves the model and its adapter, on the CPU", () => {
    assert.deepEqual(engine.models(), [
      { id: MODEL_ID, contextSize: 512, maxPromptTokens: 511, parallel: 2 },
      { id: ADAPTER_ID, baseModelId: MODEL_ID, contextSize: 512, maxPromptTokens: 511, parallel: 2 },
    ]);
    const status = engine.status();
    assert.equal(status.ready, true);
    assert.equal(status.gpu, false);
    assert.deepEqual(status.models[0], {
      id: MODEL_ID,
      loaded: true,
      activeSequences: 0,
      queued: 0,
      vramBytes: undefined,
    });
  });

  void it("templates chat prompts with the GGUF's ChatML template and counts their tokens", async () => {
    assert.equal(await engine.countPromptTokens(MODEL_ID, chat("Hello")), chatMlTokenCount("Hello"));
    const withSystem = chat("Hi there é", "Be brief.");
    const expected = chatMlTokenCount("Hi there é", "Be brief.");
    assert.equal(await engine.countPromptTokens(MODEL_ID, withSystem), expected);
    const generation = await engine.generate(request(withSystem, { maxTokens: 3 }));
    assert.equal(generation.inputTokens, expected);
    assert.equal((await collect(generation)).result.inputTokens, expected);
    // A text prompt is BOS and its bytes; content is never parsed for special tokens.
    assert.equal(await engine.countPromptTokens(MODEL_ID, { kind: "text", text: "<|im_end|>" }), 1 + 10);
  });

  void it("streams exactly what a plain node-llama-cpp sequence generates, with its exact token counts", async () => {
    const { text, chunks, result } = await collect(await engine.generate(request(chat("Hello"), { maxTokens: 12 })));

    const model = await (await sharedLlama()).loadModel({ modelPath: (await testModels()).model.path });
    try {
      const context = await model.createContext({ contextSize: 512, threads: 1 });
      const sequence = context.getSequence();
      const prompt = model.tokenize("<s><|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", true);
      const generated = [];
      for await (const token of sequence.evaluate(prompt, { temperature: 0 })) {
        generated.push(token);
        if (generated.length === 12) break;
      }
      assert.equal(text, model.detokenize(generated));
      assert.equal(result.inputTokens, prompt.length);
      assert.equal(result.outputTokens, 12);
      // What the sequence evaluated: the prompt (its last token with logits) and every sampled token but the last.
      assert.equal(sequence.tokenMeter.usedInputTokens + sequence.tokenMeter.usedOutputTokens, prompt.length + 12 - 1);
    } finally {
      await model.dispose();
    }
    assert.deepEqual(
      chunks.map((chunk) => chunk.outputTokens),
      Array.from({ length: 12 }, (_, index) => index + 1),
    );
    assert.equal(result.finishReason, "length");
    assert.ok(result.ttftMs > 0 && result.ttftMs <= result.durationMs);
  });

  void it("is deterministic when greedy, and with a fixed seed when sampling", async () => {
    const greedy = async (): Promise<string> =>
      (await collect(await engine.generate(request(chat("Tell me"), { maxTokens: 24 })))).text;
    assert.equal(await greedy(), await greedy());

    const sample = async (seed: number): Promise<string> =>
      (await collect(await engine.generate(request(chat("Tell me"), { maxTokens: 24, temperature: 1, seed })))).text;
    const first = await sample(42);
    assert.equal(await sample(42), first);
    assert.notEqual(await sample(43), first);
  });

  void it("answers differently through the LoRA adapter", async () => {
    const base = await collect(await engine.generate(request(chat("Hello"), { maxTokens: 16 })));
    const adapted = await collect(
      await engine.generate({ ...request(chat("Hello"), { maxTokens: 16 }), model: ADAPTER_ID }),
    );
    assert.equal(adapted.result.outputTokens, 16);
    assert.notEqual(adapted.text, base.text);
  });

  void it("constrains output to a JSON schema", async () => {
    const schema = {
      type: "object",
      properties: {
        answer: { enum: ["yes", "no"] },
        ok: { type: "boolean" },
        detail: { type: "object", properties: { level: { enum: [1, 2, 3] } }, required: ["level"] },
      },
      required: ["answer", "ok", "detail"],
    };
    for (const seed of [1, 2, 3]) {
      const { text, result } = await collect(
        await engine.generate(
          request(chat("Answer in JSON"), { maxTokens: 200, temperature: 1, seed, jsonSchema: schema }),
        ),
      );
      assert.equal(result.finishReason, "stop", text);
      const parsed = JSON.parse(text) as { answer: unknown; ok: unknown; detail: { level: unknown } };
      assert.ok(parsed.answer === "yes" || parsed.answer === "no");
      assert.equal(typeof parsed.ok, "boolean");
      assert.ok([1, 2, 3].includes(parsed.detail.level as number));
    }
    await assert.rejects(
      engine.generate(request(chat("x"), { jsonSchema: { type: "no-such-type" } })),
      (error: unknown) => error instanceof InvalidRequestError && /JSON schema/.test(error.message),
    );
  });

  void it("ends before a stop string, even one split across tokens", async () => {
    const reference = await collect(await engine.generate(request(chat("Write"), { maxTokens: 80 })));
    const full = reference.text;
    // Every byte is a token in this vocabulary, so any stop string of two or more bytes spans tokens.
    const stop = /[ -~]{3}/.exec(full.slice(4))?.[0];
    assert.ok(stop, `no run of 3 printable ASCII characters in ${JSON.stringify(full)}`);
    const at = full.indexOf(stop);
    const { text, chunks, result } = await collect(
      await engine.generate(request(chat("Write"), { maxTokens: 80, stop: [stop, "never seen"] })),
    );
    assert.equal(result.finishReason, "stop");
    assert.equal(text, full.slice(0, at));
    assert.ok(!text.includes(stop));
    // The stop string's tokens were generated, so they are counted: up to the token that completed it.
    let streamed = "";
    const completedAt = reference.chunks.findIndex((chunk) => (streamed += chunk.text).includes(stop));
    assert.equal(result.outputTokens, completedAt + 1);
    assert.equal(chunks.at(-1)?.outputTokens, result.outputTokens);
  });

  void it("stops at maxTokens with finishReason length and exactly that many tokens", async () => {
    for (const maxTokens of [1, 7, 64]) {
      const { chunks, result } = await collect(
        await engine.generate(request(chat("Count"), { maxTokens, temperature: 0.8, seed: 5 })),
      );
      assert.equal(result.finishReason, "length");
      assert.equal(result.outputTokens, maxTokens);
      assert.equal(chunks.length, maxTokens);
    }
  });

  void it("stops the token counter when the signal aborts, and frees the sequence", async () => {
    const controller = new AbortController();
    const generation = await engine.generate(request(chat("Go on"), { maxTokens: 400 }, { signal: controller.signal }));
    const counts: number[] = [];
    for await (const chunk of generation) {
      counts.push(chunk.outputTokens);
      if (counts.length === 5) controller.abort();
    }
    const result = await generation.result;
    assert.equal(result.finishReason, "abort");
    assert.ok(result.outputTokens >= 5 && result.outputTokens < 400);
    assert.equal(counts.at(-1), result.outputTokens);
    assert.equal(counts.length, result.outputTokens);
    // The in-flight token is dropped and the sequence released right after it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(engine.status().models[0]?.activeSequences, 0);
    assert.equal(
      (await collect(await engine.generate(request(chat("Next"), { maxTokens: 3 })))).result.outputTokens,
      3,
    );
  });

  void it("runs many concurrent requests to completion across both contexts", async () => {
    const runs = Array.from({ length: 6 }, async (_, index) =>
      collect(
        await engine.generate({
          ...request(chat(`Request ${index}`), { maxTokens: 20 + index }, { queueKey: `session-${index % 3}` }),
          model: index % 2 === 0 ? MODEL_ID : ADAPTER_ID,
        }),
      ),
    );
    const results = await Promise.all(runs);
    results.forEach(({ result, chunks }, index) => {
      assert.equal(result.finishReason, "length");
      assert.equal(result.outputTokens, 20 + index);
      assert.equal(chunks.length, 20 + index);
      assert.equal(result.inputTokens, chatMlTokenCount(`Request ${index}`));
    });
    assert.equal(
      engine.status().models.every((model) => model.activeSequences === 0 && model.queued === 0),
      true,
    );
  });

  void it("streams random bytes as well-formed text and never throws on invalid UTF-8", async () => {
    const { text, chunks, result } = await collect(
      await engine.generate(request(chat("Bytes"), { maxTokens: 300, temperature: 2, seed: 9 })),
    );
    assert.equal(result.outputTokens, 300);
    for (const chunk of chunks) assert.ok(isWellFormed(chunk.text), JSON.stringify(chunk.text));
    // Random bytes are mostly not UTF-8: they come out as U+FFFD, and some tokens wait for a character's end.
    assert.ok(text.includes("\uFFFD"));
    assert.ok(chunks.some((chunk) => chunk.text === ""));
  });

  void it("refuses unknown models, too-long prompts and invalid requests without side effects", async () => {
    await assert.rejects(engine.generate({ ...request(chat("x")), model: "0xdead" }), UnknownModelError);
    await assert.rejects(engine.countPromptTokens("0xdead", chat("x")), UnknownModelError);
    const long = chat("x".repeat(600));
    await assert.rejects(engine.generate(request(long)), (error: unknown) => {
      assert.ok(error instanceof PromptTooLongError);
      assert.equal(error.promptTokens, chatMlTokenCount("x".repeat(600)));
      assert.equal(error.maxPromptTokens, 511);
      assert.equal(error.status, 400);
      return true;
    });
    await assert.rejects(engine.generate(request(chat("x"), { maxTokens: 0 })), InvalidRequestError);
    await assert.rejects(engine.generate(request(chat("x"), { topP: 0 })), InvalidRequestError);
    assert.deepEqual(
      engine.status().models.map((model) => model.activeSequences + model.queued),
      [0, 0],
    );
  });

  void it("caps output at what fits in the sequence's context", async () => {
    const prompt = chat("y".repeat(480));
    const inputTokens = chatMlTokenCount("y".repeat(480));
    const { result } = await collect(await engine.generate(request(prompt, { maxTokens: 100 })));
    assert.equal(result.inputTokens, inputTokens);
    assert.equal(result.outputTokens, 512 - inputTokens);
    assert.equal(result.finishReason, "length");
  });
});

void describe("embedded engine shutdown", () => {
  void it("drains in-flight generations, then refuses new ones; close releases everything", async () => {
    const engine = await startTinyEngine({ parallel: 1 });
    const running = await engine.generate(request(chat("Long"), { maxTokens: 150 }));
    const drained = engine.drain(10_000);
    await assert.rejects(engine.generate(request(chat("Late"))), BackendUnavailableError);
    assert.equal(engine.status().ready, false);
    await drained;
    assert.equal((await running.result).outputTokens, 150);
    await engine.close();
    assert.deepEqual(
      engine.status().models.map((model) => model.loaded),
      [false, false],
    );
  });

  void it("rejects a drain that outlasts its grace period, and close aborts what still runs", async () => {
    const engine = await startTinyEngine({ parallel: 1 });
    const running = await engine.generate(request(chat("Long"), { maxTokens: 400 }));
    await assert.rejects(engine.drain(5), /still running after 5 ms/);
    await engine.close();
    const result = await running.result;
    assert.equal(result.finishReason, "abort");
    assert.ok(result.outputTokens < 400);
  });
});
