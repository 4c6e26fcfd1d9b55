/**
 * Builds a llama-architecture GGUF with seeded random weights and the byte vocabulary, and a LoRA
 * adapter for it. Nothing is downloaded: tests and the benchmark write their own models, and the same
 * seed always gives the same bytes (so the same sha256).
 */
import { CHATML_TEMPLATE, CONTROL_TOKEN_IDS, SpecialTokenId, byteVocabulary } from "./byte-vocabulary.js";
import type { TensorType } from "./format.js";
import { SeededRandom } from "./seeded-random.js";
import { type GgufFileSpec, type GgufTensorSpec, type WrittenFile, gguf, writeGgufFile } from "./writer.js";

export interface LlamaShape {
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  /** The context length the model claims to be trained for (`llama.context_length`). */
  contextLength: number;
}

/** Loads in milliseconds and decodes thousands of tokens/s on one CPU thread: for tests. */
export const TINY_SHAPE: LlamaShape = {
  embeddingLength: 64,
  blockCount: 2,
  headCount: 4,
  headCountKv: 4,
  feedForwardLength: 128,
  contextLength: 2048,
};

/** Enough arithmetic per token (~25M parameters) that decoding is compute-bound: for the benchmark. */
export const COMPUTE_SHAPE: LlamaShape = {
  embeddingLength: 512,
  blockCount: 8,
  headCount: 8,
  headCountKv: 8,
  feedForwardLength: 1536,
  contextLength: 2048,
};

export interface LlamaTestModelOptions {
  shape?: LlamaShape;
  seed?: number;
  /** Of the matrices; norms are always f32, as llama.cpp's converters write them. */
  tensorType?: TensorType;
  name?: string;
}

/** The matrices of one transformer block: name suffix, then ggml dims (input size first). */
function blockMatrices(shape: LlamaShape): [string, number, number][] {
  const headDim = shape.embeddingLength / shape.headCount;
  const kvWidth = headDim * shape.headCountKv;
  const { embeddingLength: d, feedForwardLength: ff } = shape;
  return [
    ["attn_q", d, d],
    ["attn_k", d, kvWidth],
    ["attn_v", d, kvWidth],
    ["attn_output", d, d],
    ["ffn_gate", d, ff],
    ["ffn_up", d, ff],
    ["ffn_down", ff, d],
  ];
}

export function llamaTestModelSpec(options: LlamaTestModelOptions = {}): GgufFileSpec {
  const shape = options.shape ?? TINY_SHAPE;
  const seed = options.seed ?? 1;
  const matrixType = options.tensorType ?? "f32";
  if (shape.embeddingLength % shape.headCount !== 0 || shape.headCount % shape.headCountKv !== 0) {
    throw new RangeError("embeddingLength must divide by headCount, and headCount by headCountKv");
  }
  const vocabulary = byteVocabulary();
  const vocabularySize = vocabulary.tokens.length;
  const d = shape.embeddingLength;
  const headDim = d / shape.headCount;

  // One generator per tensor, seeded from the model seed and the tensor's index, so a tensor's values do
  // not depend on the order tensors are generated in.
  let tensorIndex = 0;
  const random = (): SeededRandom => new SeededRandom(seed * 1_000_003 + tensorIndex++);
  const uniform = (count: number, std: number): (() => Float32Array) => {
    const generator = random();
    return () => generator.fillUniform(new Float32Array(count), std);
  };
  const ones =
    (count: number): (() => Float32Array) =>
    () =>
      new Float32Array(count).fill(1);

  const tensors: GgufTensorSpec[] = [
    { name: "token_embd.weight", dims: [d, vocabularySize], type: matrixType, values: uniform(d * vocabularySize, 1) },
    { name: "output_norm.weight", dims: [d], type: "f32", values: ones(d) },
  ];
  const outputRows = uniform(d * vocabularySize, 3 / Math.sqrt(d));
  tensors.push({
    name: "output.weight",
    dims: [d, vocabularySize],
    type: matrixType,
    values: () => {
      // Zero logits for the control tokens: random byte tokens then almost always outscore them, so greedy
      // decoding neither ends early nor emits <|im_start|>, and benchmarks get a fixed token count.
      const values = outputRows();
      for (const id of CONTROL_TOKEN_IDS) values.fill(0, id * d, (id + 1) * d);
      return values;
    },
  });
  for (let block = 0; block < shape.blockCount; block++) {
    tensors.push({ name: `blk.${block}.attn_norm.weight`, dims: [d], type: "f32", values: ones(d) });
    tensors.push({ name: `blk.${block}.ffn_norm.weight`, dims: [d], type: "f32", values: ones(d) });
    for (const [suffix, inputs, outputs] of blockMatrices(shape)) {
      tensors.push({
        name: `blk.${block}.${suffix}.weight`,
        dims: [inputs, outputs],
        type: matrixType,
        values: uniform(inputs * outputs, 1 / Math.sqrt(inputs)),
      });
    }
  }

  const name = options.name ?? `test-llama-${d}x${shape.blockCount}-seed${seed}`;
  return {
    metadata: [
      ["general.architecture", gguf.string("llama")],
      ["general.type", gguf.string("model")],
      ["general.name", gguf.string(name)],
      ["general.alignment", gguf.uint32(32)],
      ["general.file_type", gguf.uint32(matrixType === "f32" ? 0 : 1)],
      ["llama.context_length", gguf.uint32(shape.contextLength)],
      ["llama.embedding_length", gguf.uint32(d)],
      ["llama.block_count", gguf.uint32(shape.blockCount)],
      ["llama.feed_forward_length", gguf.uint32(shape.feedForwardLength)],
      ["llama.attention.head_count", gguf.uint32(shape.headCount)],
      ["llama.attention.head_count_kv", gguf.uint32(shape.headCountKv)],
      ["llama.attention.layer_norm_rms_epsilon", gguf.float32(1e-5)],
      ["llama.rope.dimension_count", gguf.uint32(headDim)],
      ["llama.rope.freq_base", gguf.float32(10000)],
      ["llama.vocab_size", gguf.uint32(vocabularySize)],
      ["tokenizer.ggml.model", gguf.string("llama")],
      ["tokenizer.ggml.tokens", gguf.strings(vocabulary.tokens)],
      ["tokenizer.ggml.scores", gguf.float32s(vocabulary.scores)],
      ["tokenizer.ggml.token_type", gguf.int32s(vocabulary.types)],
      ["tokenizer.ggml.unknown_token_id", gguf.uint32(SpecialTokenId.unknown)],
      ["tokenizer.ggml.bos_token_id", gguf.uint32(SpecialTokenId.bos)],
      ["tokenizer.ggml.eos_token_id", gguf.uint32(SpecialTokenId.eos)],
      ["tokenizer.ggml.eot_token_id", gguf.uint32(SpecialTokenId.imEnd)],
      ["tokenizer.ggml.add_bos_token", gguf.bool(true)],
      ["tokenizer.ggml.add_eos_token", gguf.bool(false)],
      ["tokenizer.ggml.add_space_prefix", gguf.bool(false)],
      ["tokenizer.chat_template", gguf.string(CHATML_TEMPLATE)],
    ],
    tensors,
  };
}

export function writeLlamaTestModel(path: string, options: LlamaTestModelOptions = {}): Promise<WrittenFile> {
  return writeGgufFile(path, llamaTestModelSpec(options));
}

export interface LoraTestAdapterOptions {
  /** The base model's shape; the adapter's tensors must match it. */
  shape?: LlamaShape;
  seed?: number;
  rank?: number;
  /** llama.cpp scales the update by `alpha / rank` (times the scale a context applies it with). */
  alpha?: number;
  /** Which matrices of every block the adapter changes. */
  targets?: readonly string[];
}

/**
 * A LoRA adapter in llama.cpp's GGUF form (`general.type = "adapter"`, `adapter.type = "lora"`, pairs
 * `blk.N.<matrix>.weight.lora_a` of dims [inputs, rank] and `.lora_b` of dims [rank, outputs]). Unlike
 * a freshly initialised LoRA, B is not zero: the update is as large as the base weights, so the
 * adapted model's greedy output differs from the base model's.
 */
export function loraTestAdapterSpec(options: LoraTestAdapterOptions = {}): GgufFileSpec {
  const shape = options.shape ?? TINY_SHAPE;
  const seed = options.seed ?? 2;
  const rank = options.rank ?? 4;
  const alpha = options.alpha ?? rank;
  const targets = new Set(options.targets ?? ["attn_q", "attn_v", "ffn_up", "ffn_down"]);
  let tensorIndex = 0;
  const uniform = (count: number, std: number): (() => Float32Array) => {
    const generator = new SeededRandom(seed * 1_000_003 + tensorIndex++);
    return () => generator.fillUniform(new Float32Array(count), std);
  };
  const tensors: GgufTensorSpec[] = [];
  for (let block = 0; block < shape.blockCount; block++) {
    for (const [suffix, inputs, outputs] of blockMatrices(shape)) {
      if (!targets.has(suffix)) continue;
      const base = `blk.${block}.${suffix}.weight`;
      tensors.push({
        name: `${base}.lora_a`,
        dims: [inputs, rank],
        type: "f32",
        values: uniform(inputs * rank, 1 / Math.sqrt(inputs)),
      });
      tensors.push({
        name: `${base}.lora_b`,
        dims: [rank, outputs],
        type: "f32",
        values: uniform(rank * outputs, 1 / Math.sqrt(rank)),
      });
    }
  }
  if (tensors.length === 0)
    throw new RangeError(`no matrix of a llama block is named in targets: ${[...targets].join(", ")}`);
  return {
    metadata: [
      ["general.architecture", gguf.string("llama")],
      ["general.type", gguf.string("adapter")],
      ["general.name", gguf.string(`test-lora-rank${rank}-seed${seed}`)],
      ["general.alignment", gguf.uint32(32)],
      ["adapter.type", gguf.string("lora")],
      ["adapter.lora.alpha", gguf.float32(alpha)],
    ],
    tensors,
  };
}

export function writeLoraTestAdapter(path: string, options: LoraTestAdapterOptions = {}): Promise<WrittenFile> {
  return writeGgufFile(path, loraTestAdapterSpec(options));
}
