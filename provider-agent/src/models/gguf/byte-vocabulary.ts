/**
 * A byte-level SentencePiece ("llama") vocabulary: five special tokens, "▁" (SentencePiece's space),
 * and one token per byte. llama.cpp's SPM tokenizer escapes spaces to "▁" and falls back to the
 * `<0xXX>` byte tokens for everything else, so any text round-trips through it.
 */
import { TokenType } from "./format.js";

export const SpecialTokenId = {
  unknown: 0,
  bos: 1,
  eos: 2,
  imStart: 3,
  imEnd: 4,
} as const;

/** The SentencePiece whitespace marker; without a token of its own a space would decode as "▁". */
const SPACE_PIECE = "\u2581";
export const FIRST_BYTE_TOKEN = 6;

export interface Vocabulary {
  tokens: string[];
  scores: number[];
  types: number[];
}

export function byteVocabulary(): Vocabulary {
  const tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", SPACE_PIECE];
  const types: number[] = [
    TokenType.unknown,
    TokenType.control,
    TokenType.control,
    TokenType.control,
    TokenType.control,
  ];
  types.push(TokenType.normal);
  for (let byte = 0; byte < 256; byte++) {
    tokens.push(`<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.byte);
  }
  return { tokens, scores: tokens.map(() => 0), types };
}

/** Token ids a model never means to emit on its own: their output rows are zeroed (see test-llama.ts). */
export const CONTROL_TOKEN_IDS: readonly number[] = Object.values(SpecialTokenId);

/** The ChatML template (as in Qwen's and OpenHermes' GGUFs); node-llama-cpp recognises it as ChatML. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
