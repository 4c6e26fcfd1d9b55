/**
 * Constants of the GGUF file format (version 3), as defined by llama.cpp's `gguf-py/gguf/constants.py`
 * and `ggml/include/gguf.h`. Only what this project writes is listed.
 */

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_VERSION = 3;
/** llama.cpp's default; written explicitly as `general.alignment` too. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** `gguf_type`: the type tag of a metadata value. */
export const GgufValueType = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

/** `ggml_type` of a tensor; the generator writes unquantized tensors only. */
export const GgmlTensorType = {
  f32: 0,
  f16: 1,
} as const;
export type TensorType = keyof typeof GgmlTensorType;

export const BYTES_PER_ELEMENT: Record<TensorType, number> = { f32: 4, f16: 2 };

/** `llama_token_type` in `tokenizer.ggml.token_type`. */
export const TokenType = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;
