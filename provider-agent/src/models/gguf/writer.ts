/**
 * Writes a GGUF (version 3) file: header, key/value metadata, tensor infos, then each tensor's data
 * at an aligned offset. Enough of the format for unquantized (f32/f16) models and LoRA adapters.
 */
import { createHash } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";

import { toFloat16Bits } from "./float16.js";
import {
  BYTES_PER_ELEMENT,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgmlTensorType,
  GgufValueType,
  type TensorType,
} from "./format.js";

type ArrayItemType = "string" | "float32" | "int32" | "uint32";

export type GgufMetadataValue =
  | { type: "uint32" | "int32" | "float32"; value: number }
  | { type: "uint64"; value: bigint }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; itemType: "string"; value: readonly string[] }
  | { type: "array"; itemType: Exclude<ArrayItemType, "string">; value: readonly number[] };

/** Typed constructors for metadata values: `gguf.uint32(64)`, `gguf.strings(["a"])`… */
export const gguf = {
  uint32: (value: number): GgufMetadataValue => ({ type: "uint32", value }),
  int32: (value: number): GgufMetadataValue => ({ type: "int32", value }),
  float32: (value: number): GgufMetadataValue => ({ type: "float32", value }),
  uint64: (value: bigint): GgufMetadataValue => ({ type: "uint64", value }),
  bool: (value: boolean): GgufMetadataValue => ({ type: "bool", value }),
  string: (value: string): GgufMetadataValue => ({ type: "string", value }),
  strings: (value: readonly string[]): GgufMetadataValue => ({ type: "array", itemType: "string", value }),
  float32s: (value: readonly number[]): GgufMetadataValue => ({ type: "array", itemType: "float32", value }),
  int32s: (value: readonly number[]): GgufMetadataValue => ({ type: "array", itemType: "int32", value }),
};

export interface GgufTensorSpec {
  name: string;
  /** ggml order: `dims[0]` varies fastest (a matrix's row length, i.e. its input size). */
  dims: readonly number[];
  type: TensorType;
  /** The tensor's values, produced when it is written so that a large model never sits whole in memory. */
  values: () => Float32Array;
}

export interface GgufFileSpec {
  /** In file order; llama.cpp looks keys up by name, order only matters for byte-identical output. */
  metadata: readonly (readonly [string, GgufMetadataValue])[];
  tensors: readonly GgufTensorSpec[];
  alignment?: number;
}

export interface WrittenFile {
  path: string;
  bytes: number;
  sha256: string;
}

export class GgufSpecError extends Error {
  constructor(detail: string) {
    super(`invalid GGUF spec: ${detail}`);
    this.name = "GgufSpecError";
  }
}

/** Writes `spec` to `path` through a temporary file and a rename, so a reader never sees half a model. */
export async function writeGgufFile(path: string, spec: GgufFileSpec): Promise<WrittenFile> {
  const alignment = spec.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const header = encodeHeader(spec, alignment);
  const hash = createHash("sha256");
  const temporaryPath = `${path}.${process.pid}.partial`;
  const file = await open(temporaryPath, "w");
  let bytes = 0;
  const write = async (chunk: Uint8Array): Promise<void> => {
    hash.update(chunk);
    await file.write(chunk);
    bytes += chunk.length;
  };
  try {
    await write(header);
    for (const tensor of spec.tensors) {
      const data = encodeTensorData(tensor);
      await write(data);
      const padding = paddingFor(data.length, alignment);
      if (padding > 0) await write(new Uint8Array(padding));
    }
    await file.sync();
    await file.close();
    await rename(temporaryPath, path);
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(temporaryPath, { force: true });
    throw error;
  }
  return { path, bytes, sha256: hash.digest("hex") };
}

function encodeHeader(spec: GgufFileSpec, alignment: number): Uint8Array {
  const out = new ByteSink();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(BigInt(spec.tensors.length));
  out.u64(BigInt(spec.metadata.length));
  for (const [key, value] of spec.metadata) {
    out.string(key);
    encodeValue(out, value);
  }
  let offset = 0;
  for (const tensor of spec.tensors) {
    const elements = elementCount(tensor);
    out.string(tensor.name);
    out.u32(tensor.dims.length);
    for (const dim of tensor.dims) out.u64(BigInt(dim));
    out.u32(GgmlTensorType[tensor.type]);
    out.u64(BigInt(offset));
    const size = elements * BYTES_PER_ELEMENT[tensor.type];
    offset += size + paddingFor(size, alignment);
  }
  out.zeros(paddingFor(out.length, alignment));
  return out.bytes();
}

function encodeValue(out: ByteSink, value: GgufMetadataValue): void {
  if (value.type === "array") {
    out.u32(GgufValueType.array);
    out.u32(GgufValueType[value.itemType]);
    out.u64(BigInt(value.value.length));
    if (value.itemType === "string") for (const item of value.value) out.string(item);
    else for (const item of value.value) encodeScalar(out, value.itemType, item);
    return;
  }
  out.u32(GgufValueType[value.type]);
  if (value.type === "string") out.string(value.value);
  else if (value.type === "bool") out.u8(value.value ? 1 : 0);
  else if (value.type === "uint64") out.u64(value.value);
  else encodeScalar(out, value.type, value.value);
}

function encodeScalar(out: ByteSink, type: "uint32" | "int32" | "float32", value: number): void {
  if (type === "uint32") out.u32(value);
  else if (type === "int32") out.i32(value);
  else out.f32(value);
}

function elementCount(tensor: GgufTensorSpec): number {
  if (tensor.dims.length === 0 || tensor.dims.length > 4) {
    throw new GgufSpecError(`tensor ${tensor.name} has ${tensor.dims.length} dimensions (1 to 4 allowed)`);
  }
  return tensor.dims.reduce((product, dim) => product * dim, 1);
}

function encodeTensorData(tensor: GgufTensorSpec): Uint8Array {
  const values = tensor.values();
  const expected = elementCount(tensor);
  if (values.length !== expected) {
    throw new GgufSpecError(`tensor ${tensor.name} has ${values.length} values, its dimensions need ${expected}`);
  }
  // GGUF is little-endian, like every machine llama.cpp's prebuilt binaries run on; typed arrays use the host order.
  if (tensor.type === "f32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const halves = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) halves[i] = toFloat16Bits(values[i]!);
  return new Uint8Array(halves.buffer);
}

function paddingFor(length: number, alignment: number): number {
  return (alignment - (length % alignment)) % alignment;
}

/** A growable little-endian byte buffer for the header. */
class ByteSink {
  private buffer = new Uint8Array(4096);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  /** Makes room for `size` bytes and returns where they start; call it before touching `view` or `buffer`. */
  private reserve(size: number): number {
    if (this.length + size > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + size));
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += size;
    return at;
  }

  u8(value: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, value);
  }
  u32(value: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, value, true);
  }
  i32(value: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, value, true);
  }
  f32(value: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, value, true);
  }
  u64(value: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, value, true);
  }
  string(value: string): void {
    const encoded = new TextEncoder().encode(value);
    this.u64(BigInt(encoded.length));
    const at = this.reserve(encoded.length);
    this.buffer.set(encoded, at);
  }
  zeros(count: number): void {
    this.reserve(count);
  }
  bytes(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}
