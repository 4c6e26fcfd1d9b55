/**
 * Checks a GGUF file before llama.cpp opens it, so that a missing, empty, truncated, corrupt or
 * non-GGUF file is refused with an error naming the file and what is wrong with it, rather than
 * llama.cpp's "failed to load model".
 */
import { open, stat } from "node:fs/promises";

import { readGgufFileInfo } from "node-llama-cpp";

/** A model or adapter file that cannot be served; `path` and `reason` say which and why. */
export class ModelLoadError extends Error {
  constructor(
    readonly modelId: string,
    readonly path: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot load model ${modelId} from ${path}: ${reason}`, options);
    this.name = "ModelLoadError";
  }
}

export type GgufKind = "model" | "adapter";

const GGUF_MAGIC = Buffer.from("GGUF", "latin1");

/**
 * Bytes per block and elements per block of the ggml types GGUF files mostly use (ggml/src/ggml.c's
 * type traits), to find the end of the last tensor. Other types skip that check; llama.cpp still
 * refuses a file whose tensors run past its end.
 */
const GGML_TYPE_BLOCKS: Record<number, readonly [bytes: number, elements: number]> = {
  0: [4, 1], // F32
  1: [2, 1], // F16
  2: [18, 32], // Q4_0
  3: [20, 32], // Q4_1
  6: [22, 32], // Q5_0
  7: [24, 32], // Q5_1
  8: [34, 32], // Q8_0
  10: [84, 256], // Q2_K
  11: [110, 256], // Q3_K
  12: [144, 256], // Q4_K
  13: [176, 256], // Q5_K
  14: [210, 256], // Q6_K
  15: [292, 256], // Q8_K
  28: [8, 1], // F64
  30: [2, 1], // BF16
};

/** Throws `ModelLoadError` unless `path` is a complete GGUF file of the expected kind. */
export async function checkGgufFile(modelId: string, path: string, kind: GgufKind): Promise<void> {
  const fail = (reason: string, cause?: unknown): never => {
    throw new ModelLoadError(modelId, path, reason, { cause });
  };
  const info = await stat(path).catch((error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code;
    return fail(
      code === "ENOENT" ? "the file does not exist" : `the file cannot be read (${code ?? String(error)})`,
      error,
    );
  });
  if (!info.isFile()) fail("not a regular file");
  if (info.size === 0) fail("the file is empty");
  const head = Buffer.alloc(8);
  const handle = await open(path, "r").catch((error: unknown) => fail("the file cannot be opened", error));
  try {
    await handle.read(head, 0, 8, 0);
  } finally {
    await handle.close();
  }
  if (info.size < 8 || !head.subarray(0, 4).equals(GGUF_MAGIC)) {
    fail(`not a GGUF file (it starts with ${JSON.stringify(head.subarray(0, 4).toString("latin1"))}, not "GGUF")`);
  }
  const version = head.readUInt32LE(4);
  if (version !== 2 && version !== 3) fail(`unsupported GGUF version ${version} (2 and 3 are read)`);

  const gguf = await readGgufFileInfo(path, {
    sourceType: "filesystem",
    readTensorInfo: true,
    logWarnings: false,
  }).catch((error: unknown) => fail(`the GGUF header is corrupt or truncated (${errorMessage(error)})`, error));
  const type = (gguf.metadata.general as { type?: unknown } | undefined)?.type;
  if (kind === "adapter" && type !== "adapter") {
    fail(`not a LoRA adapter (general.type is ${JSON.stringify(type ?? null)}, not "adapter")`);
  }
  if (kind === "model" && type === "adapter")
    fail("this is a LoRA adapter, not a model: list it under a model's adapters");

  // node-llama-cpp's reader pads a short file with zeros instead of failing, so check the header's end.
  if (gguf.infoEndOffset !== undefined && gguf.infoEndOffset > info.size) {
    fail(`the file is truncated inside its GGUF header (${info.size} bytes, the header needs ${gguf.infoEndOffset})`);
  }
  let end = 0;
  for (const tensor of gguf.tensorInfo ?? []) {
    const block = GGML_TYPE_BLOCKS[tensor.ggmlType];
    const start = Number(tensor.fileOffset);
    if (start > info.size) fail(`the file is truncated: tensor ${tensor.name} starts at byte ${start} of ${info.size}`);
    if (!block) continue;
    const elements = tensor.dimensions.reduce<number>((product, dim) => product * Number(dim), 1);
    end = Math.max(end, start + Math.ceil(elements / block[1]) * block[0]);
  }
  if (end > info.size) fail(`the file is truncated: its tensors need ${end} bytes, it has ${info.size}`);
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
