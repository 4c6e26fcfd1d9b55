/**
 * `npm run model:tiny [-- --out DIR] [-- --compute]`: writes the tiny test model and its LoRA adapter
 * (and, with --compute, the benchmark's compute-bound model) into provider-agent/models/, and prints
 * each file's path and sha256, the content hash to register on chain. Deterministic: the same seed
 * gives the same bytes.
 */
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { formatBytes } from "./progress-reporter.js";
import { COMPUTE_SHAPE, TINY_SHAPE, writeLlamaTestModel, writeLoraTestAdapter } from "./gguf/test-llama.js";

export const TINY_MODEL_FILE = "tiny.gguf";
export const TINY_ADAPTER_FILE = "tiny-lora.gguf";
export const COMPUTE_MODEL_FILE = "compute-512x8.gguf";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: fileURLToPath(new URL("../../models", import.meta.url)) },
    compute: { type: "boolean", default: false },
    seed: { type: "string", default: "1" },
  },
});
const directory = resolve(values.out);
const seed = Number(values.seed);
if (!Number.isSafeInteger(seed)) throw new RangeError(`--seed must be a whole number, not ${values.seed}`);
await mkdir(directory, { recursive: true });

const written = [
  await writeLlamaTestModel(join(directory, TINY_MODEL_FILE), { shape: TINY_SHAPE, seed }),
  await writeLoraTestAdapter(join(directory, TINY_ADAPTER_FILE), { shape: TINY_SHAPE, seed: seed + 1 }),
];
if (values.compute) {
  written.push(
    await writeLlamaTestModel(join(directory, COMPUTE_MODEL_FILE), { shape: COMPUTE_SHAPE, seed, tensorType: "f16" }),
  );
}
for (const file of written) console.log(`${file.path}  ${formatBytes(file.bytes)}  sha256 ${file.sha256}`);
