/**
 * The model a local market's agent serves: any GGUF the user names (MODEL_PATH), or the project's
 * tiny generated test model (random weights, so it answers gibberish, fast), written once into
 * cache/models/ by the project's GGUF writer. No model is ever downloaded or committed.
 */
import { existsSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { TINY_SHAPE, writeLlamaTestModel } from "../../provider-agent/src/models/gguf/test-llama";
import type { ServedModel } from "./service-configs";

const ROOT = join(dirname(__filename), "..", ".."); // __dirname is wrong when an ES module imports this (local-chain.ts)
const TINY_MODEL_FILE = join(ROOT, "cache", "models", "tiny.gguf");
/** The seed of `npm run model:tiny`'s model: the same bytes, so the same sha256 and model id. */
const TINY_MODEL_SEED = 1;

export class ModelFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelFileError";
  }
}

/** Writes the tiny test model unless it is there; says whether it wrote it. */
export async function ensureTinyModel(path = TINY_MODEL_FILE): Promise<{ path: string; generated: boolean }> {
  if (existsSync(path)) return { path, generated: false };
  await mkdir(dirname(path), { recursive: true });
  await writeLlamaTestModel(path, { shape: TINY_SHAPE, seed: TINY_MODEL_SEED });
  return { path, generated: true };
}

/** How the agent serves the tiny model: one CPU thread, no GPU (it decodes thousands of tokens a second). */
export function tinyModelServing(path: string): ServedModel {
  return {
    name: "tiny",
    file: path,
    ownership: { register: { royaltyBps: 300, tags: ["test", "tiny"] } },
    contextSize: 1024,
    parallel: 4,
    threads: 1,
    gpu: "off",
    maxTokens: 256,
  };
}

/**
 * A user's GGUF (MODEL_PATH, relative to `baseDir`: where the user ran `npm start`, which npm says in
 * INIT_CWD), checked to be a readable file; served with all cores and the GPU if any.
 */
export function ggufModelServing(modelPath: string, baseDir = process.cwd()): ServedModel {
  const path = resolve(baseDir, modelPath);
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new ModelFileError(`MODEL_PATH=${modelPath} is not a file`);
    size = stat.size;
  } catch (error) {
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(
      `MODEL_PATH=${modelPath} (${path}) cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"}): give the path of a GGUF file, or unset MODEL_PATH to serve the tiny test model`,
    );
  }
  if (size === 0) throw new ModelFileError(`MODEL_PATH=${modelPath} is empty`);
  return {
    name:
      basename(path)
        .replace(/\.gguf$/i, "")
        .slice(0, 64) || "model",
    file: path,
    ownership: { register: { royaltyBps: 0, tags: ["local"] } },
    contextSize: 4096,
    parallel: 2,
    gpu: "auto",
    maxTokens: 1024,
  };
}
