/** The GGUF writer and the generated test models, read back with an independent parser (@huggingface/gguf). */
import assert from "node:assert/strict";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { gguf } from "@huggingface/gguf";

import { fromFloat16Bits, toFloat16Bits } from "../src/models/gguf/float16.js";
import { SeededRandom } from "../src/models/gguf/seeded-random.js";
import { CHATML_TEMPLATE } from "../src/models/gguf/byte-vocabulary.js";
import {
  TINY_SHAPE,
  llamaTestModelSpec,
  writeLlamaTestModel,
  writeLoraTestAdapter,
} from "../src/models/gguf/test-llama.js";
import { GgufSpecError, gguf as value, writeGgufFile } from "../src/models/gguf/writer.js";
import { sha256OfFile } from "../src/models/model-hash.js";

void describe("GGUF writer", () => {
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "agent-gguf-"));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  void it("writes metadata and aligned tensors that an independent reader reads back exactly", async () => {
    const path = join(directory, "small.gguf");
    const values = Float32Array.from([1, -2, 3.5, 0.25, 7, -8]);
    const written = await writeGgufFile(path, {
      metadata: [
        ["general.architecture", value.string("llama")],
        ["test.count", value.uint32(7)],
        ["test.offset", value.int32(-3)],
        ["test.ratio", value.float32(0.5)],
        ["test.flag", value.bool(true)],
        ["test.big", value.uint64(2n ** 40n)],
        ["test.names", value.strings(["a", "ü", ""])],
        ["test.weights", value.float32s([1.5, -2])],
      ],
      tensors: [
        { name: "a.weight", dims: [3, 2], type: "f32", values: () => values },
        { name: "b.weight", dims: [5], type: "f16", values: () => Float32Array.from([0, 1, -1, 65504, 1 / 3]) },
      ],
    });
    const parsed = await gguf(path, { allowLocalFile: true });
    const metadata = parsed.metadata as Record<string, unknown>;
    assert.equal(metadata.version, 3);
    assert.equal(metadata.tensor_count, 2n);
    assert.equal(metadata["general.architecture"], "llama");
    assert.equal(metadata["test.count"], 7);
    assert.equal(metadata["test.offset"], -3);
    assert.equal(metadata["test.ratio"], 0.5);
    assert.equal(metadata["test.flag"], true);
    assert.equal(metadata["test.big"], 2n ** 40n);
    assert.deepEqual(metadata["test.names"], ["a", "ü", ""]);
    assert.deepEqual(metadata["test.weights"], [1.5, -2]);
    assert.deepEqual(
      parsed.tensorInfos.map((tensor) => [tensor.name, tensor.shape, tensor.dtype, tensor.offset]),
      [
        ["a.weight", [3n, 2n], 0, 0n],
        ["b.weight", [5n], 1, 32n],
      ],
    );
    assert.equal(parsed.tensorDataOffset % 32n, 0n);
    assert.equal(written.bytes, Number(parsed.tensorDataOffset) + 32 + 32);
    assert.equal(written.sha256, await sha256OfFile(path));

    const file = await open(path, "r");
    const data = Buffer.alloc(64);
    await file.read(data, 0, 64, Number(parsed.tensorDataOffset));
    await file.close();
    assert.deepEqual(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + 24)), values);
    const halves = [0, 1, 2, 3, 4].map((index) => fromFloat16Bits(data.readUInt16LE(32 + index * 2)));
    assert.deepEqual(halves.slice(0, 4), [0, 1, -1, 65504]);
    assert.ok(Math.abs(halves[4]! - 1 / 3) < 1e-3);
  });

  void it("rejects a tensor whose values do not fill its dimensions, leaving no file", async () => {
    const path = join(directory, "bad.gguf");
    await assert.rejects(
      writeGgufFile(path, {
        metadata: [],
        tensors: [{ name: "x", dims: [4], type: "f32", values: () => new Float32Array(3) }],
      }),
      GgufSpecError,
    );
    await assert.rejects(open(path, "r"), { code: "ENOENT" });
  });

  void it("converts to f16 with round-half-to-even, subnormals and overflow", () => {
    assert.equal(toFloat16Bits(1), 0x3c00);
    assert.equal(toFloat16Bits(-2), 0xc000);
    assert.equal(toFloat16Bits(65520), 0x7c00);
    assert.equal(toFloat16Bits(2 ** -24), 0x0001);
    assert.equal(toFloat16Bits(2 ** -26), 0x0000);
    assert.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00);
    assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
    assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(Number.NaN))));
    const random = new SeededRandom(3);
    for (let i = 0; i < 1000; i++) {
      const x = (random.next() * 2 - 1) * 100;
      assert.ok(Math.abs(fromFloat16Bits(toFloat16Bits(x)) - x) <= Math.abs(x) * 2 ** -11);
    }
  });
});

void describe("generated test models", () => {
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "agent-test-models-"));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  void it("builds a llama model with a byte vocabulary and a ChatML template", async () => {
    const path = join(directory, "tiny.gguf");
    await writeLlamaTestModel(path, { seed: 1 });
    const parsed = await gguf(path, { allowLocalFile: true });
    const metadata = parsed.metadata as Record<string, unknown>;
    assert.equal(metadata["general.architecture"], "llama");
    assert.equal(metadata["llama.embedding_length"], 64);
    assert.equal(metadata["llama.block_count"], 2);
    assert.equal(metadata["tokenizer.ggml.model"], "llama");
    assert.equal(metadata["tokenizer.chat_template"], CHATML_TEMPLATE);
    const tokens = metadata["tokenizer.ggml.tokens"] as string[];
    assert.equal(tokens.length, 262);
    assert.deepEqual(tokens.slice(0, 6), ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "\u2581"]);
    assert.equal(tokens[6 + 0x41], "<0x41>");
    const shapes = new Map(parsed.tensorInfos.map((tensor) => [tensor.name, tensor.shape.map(Number)]));
    assert.deepEqual(shapes.get("token_embd.weight"), [64, 262]);
    assert.deepEqual(shapes.get("blk.1.ffn_down.weight"), [TINY_SHAPE.feedForwardLength, 64]);
    assert.equal(parsed.tensorInfos.length, 3 + 2 * 9);
    for (const tensor of parsed.tensorInfos) assert.equal(tensor.offset % 32n, 0n, tensor.name);
  });

  void it("is deterministic: the same seed gives the same sha256, another seed another", async () => {
    const first = await writeLlamaTestModel(join(directory, "a.gguf"), { seed: 7 });
    const again = await writeLlamaTestModel(join(directory, "b.gguf"), { seed: 7 });
    const other = await writeLlamaTestModel(join(directory, "c.gguf"), { seed: 8 });
    assert.equal(first.sha256, again.sha256);
    assert.notEqual(first.sha256, other.sha256);
    // Tensor values do not depend on generation order: the spec's generators are per tensor.
    const spec = llamaTestModelSpec({ seed: 7 });
    const last = spec.tensors.at(-1)!;
    assert.deepEqual(last.values(), llamaTestModelSpec({ seed: 7 }).tensors.at(-1)!.values());
  });

  void it("builds a LoRA adapter in llama.cpp's form", async () => {
    const path = join(directory, "lora.gguf");
    await writeLoraTestAdapter(path, { rank: 4, alpha: 8, targets: ["attn_q", "ffn_down"] });
    const parsed = await gguf(path, { allowLocalFile: true });
    const metadata = parsed.metadata as Record<string, unknown>;
    assert.equal(metadata["general.type"], "adapter");
    assert.equal(metadata["adapter.type"], "lora");
    assert.equal(metadata["adapter.lora.alpha"], 8);
    const shapes = Object.fromEntries(parsed.tensorInfos.map((tensor) => [tensor.name, tensor.shape.map(Number)]));
    assert.deepEqual(shapes, {
      "blk.0.attn_q.weight.lora_a": [64, 4],
      "blk.0.attn_q.weight.lora_b": [4, 64],
      "blk.0.ffn_down.weight.lora_a": [128, 4],
      "blk.0.ffn_down.weight.lora_b": [4, 64],
      "blk.1.attn_q.weight.lora_a": [64, 4],
      "blk.1.attn_q.weight.lora_b": [4, 64],
      "blk.1.ffn_down.weight.lora_a": [128, 4],
      "blk.1.ffn_down.weight.lora_b": [4, 64],
    });
  });
});
