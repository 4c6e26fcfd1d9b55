/** The fair queue and the slot scheduler, alone and in front of the embedded engine's sequences. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import type { Generation } from "../src/inference/backend.js";
import type { EmbeddedEngine } from "../src/inference/embedded/embedded-engine.js";
import { QueueFullError } from "../src/inference/errors.js";
import { FairQueue } from "../src/inference/scheduling/fair-queue.js";
import { SlotScheduler } from "../src/inference/scheduling/slot-scheduler.js";
import { chat, collect, request, startTinyEngine } from "./support/models.js";

void describe("FairQueue", () => {
  void it("serves keys in turn, oldest first within a key", () => {
    const queue = new FairQueue<string>();
    for (const [key, item] of [
      ["a", "A1"],
      ["a", "A2"],
      ["a", "A3"],
      ["b", "B1"],
      ["c", "C1"],
    ] as const)
      queue.push(key, item);
    const order: string[] = [];
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) order.push(item);
    assert.deepEqual(order, ["A1", "B1", "C1", "A2", "A3"]);
    assert.equal(queue.size, 0);
  });

  void it("puts a key that comes back at the end of the line, and removes a withdrawn item", () => {
    const queue = new FairQueue<string>();
    queue.push("a", "A1");
    queue.push("b", "B1");
    assert.equal(queue.shift(), "A1");
    queue.push("a", "A2");
    queue.push("c", "C1");
    assert.equal(queue.remove("c", "C1"), true);
    assert.equal(queue.remove("c", "C1"), false);
    assert.deepEqual([queue.shift(), queue.shift(), queue.shift()], ["B1", "A2", undefined]);
  });
});

void describe("SlotScheduler", () => {
  void it("hands out the lowest free slot and refuses past the queue's cap with a retry hint", async () => {
    const scheduler = new SlotScheduler([{ index: 1 }, { index: 0 }], { model: "m", maxQueued: 1 });
    const signal = new AbortController().signal;
    const first = await scheduler.admit("a", signal);
    const second = await scheduler.admit("b", signal);
    assert.deepEqual([first?.index, second?.index], [0, 1]);
    const waiting = scheduler.admit("c", signal);
    assert.throws(
      () => scheduler.admit("d", signal),
      (error: unknown) => error instanceof QueueFullError && error.retryAfterSeconds >= 1,
    );
    assert.equal(scheduler.queued, 1);
    scheduler.release(second!);
    assert.equal((await waiting)?.index, 1);
    scheduler.release(first!);
    const again = await scheduler.admit("e", signal);
    assert.equal(again?.index, 0);
  });

  void it("gives nothing to a waiter whose signal aborts", async () => {
    const scheduler = new SlotScheduler([{ index: 0 }], { model: "m", maxQueued: 4 });
    const held = await scheduler.admit("a", new AbortController().signal);
    const controller = new AbortController();
    const waiting = scheduler.admit("b", controller.signal);
    controller.abort();
    assert.equal(await waiting, null);
    assert.equal(scheduler.queued, 0);
    scheduler.release(held!);
    assert.equal(scheduler.active, 0);
  });
});

void describe("embedded engine queue", () => {
  let engine: EmbeddedEngine;
  before(async () => {
    engine = await startTinyEngine({ parallel: 1, maxQueued: 5, adapters: [] });
  });
  after(async () => {
    await engine.close();
  });

  /** Occupies the only sequence until aborted. */
  async function occupy(): Promise<{ release: () => Promise<void> }> {
    const controller = new AbortController();
    const generation = await engine.generate(request(chat("Busy"), { maxTokens: 500 }, { signal: controller.signal }));
    const iterator = generation[Symbol.asyncIterator]();
    await iterator.next();
    return {
      release: async () => {
        controller.abort();
        await generation.result;
      },
    };
  }

  void it("serves queued sessions round-robin when every sequence is busy", async () => {
    const blocker = await occupy();
    const order: string[] = [];
    const queued: Promise<void>[] = [];
    for (const [key, name] of [
      ["a", "A1"],
      ["a", "A2"],
      ["a", "A3"],
      ["b", "B1"],
      ["c", "C1"],
    ] as const) {
      const generation: Generation = await engine.generate(request(chat(name), { maxTokens: 2 }, { queueKey: key }));
      queued.push(
        (async () => {
          const iterator = generation[Symbol.asyncIterator]();
          await iterator.next();
          order.push(name);
          await generation.result;
        })(),
      );
    }
    assert.equal(engine.status().models[0]?.queued, 5);
    await blocker.release();
    await Promise.all(queued);
    assert.deepEqual(order, ["A1", "B1", "C1", "A2", "A3"]);
  });

  void it("refuses with QueueFullError once the queue is at its cap, changing nothing", async () => {
    const blocker = await occupy();
    const waiting = await Promise.all(
      Array.from({ length: 5 }, (_, index) =>
        engine.generate(request(chat(`q${index}`), { maxTokens: 1 }, { queueKey: `k${index}` })),
      ),
    );
    await assert.rejects(engine.generate(request(chat("one too many"))), (error: unknown) => {
      assert.ok(error instanceof QueueFullError);
      assert.ok(error.retryAfterSeconds >= 1 && error.retryAfterSeconds <= 300);
      return true;
    });
    assert.equal(engine.status().models[0]?.queued, 5);
    await blocker.release();
    for (const generation of waiting) assert.equal((await collect(generation)).result.outputTokens, 1);
  });

  void it("drops a request aborted while queued: nothing evaluated, nothing charged", async () => {
    const blocker = await occupy();
    const controller = new AbortController();
    const generation = await engine.generate(request(chat("Never mind"), {}, { signal: controller.signal }));
    assert.equal(engine.status().models[0]?.queued, 1);
    controller.abort();
    const { chunks, result } = await collect(generation);
    assert.deepEqual([chunks.length, result.inputTokens, result.outputTokens, result.finishReason], [0, 0, 0, "abort"]);
    assert.equal(engine.status().models[0]?.queued, 0);
    await blocker.release();
  });
});
