/** The request's sampling options, checked and completed with the engine's defaults. */
import { randomInt } from "node:crypto";

import type { SamplingOptions } from "../backend.js";
import { InvalidRequestError } from "../errors.js";

export interface ResolvedSampling {
  maxTokens: number;
  /** 0 is greedy. */
  temperature: number;
  topP: number;
  /** llama.cpp's (and llama-server's) default; OpenAI has no top-k. A bigger k costs a sort per token. */
  topK: number;
  /** A uint32, as llama.cpp's sampler takes it. */
  seed: number;
  stop: string[];
}

/** OpenAI's defaults for what the request leaves out: temperature 1, top_p 1. */
export const DEFAULT_TEMPERATURE = 1;
export const DEFAULT_TOP_P = 1;
export const DEFAULT_TOP_K = 40;

export function resolveSampling(model: string, sampling: SamplingOptions): ResolvedSampling {
  const invalid = (detail: string): never => {
    throw new InvalidRequestError(model, detail);
  };
  const { maxTokens, temperature = DEFAULT_TEMPERATURE, topP = DEFAULT_TOP_P, seed, stop = [] } = sampling;
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 1)
    invalid(`maxTokens must be a whole number ≥ 1, not ${maxTokens}`);
  if (!Number.isFinite(temperature) || temperature < 0) invalid(`temperature must be ≥ 0, not ${temperature}`);
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) invalid(`topP must be in (0, 1], not ${topP}`);
  if (seed !== undefined && !Number.isSafeInteger(seed)) invalid(`seed must be a whole number, not ${seed}`);
  if (!Array.isArray(stop) || stop.some((item) => typeof item !== "string")) invalid("stop must be a list of strings");
  return {
    maxTokens,
    temperature,
    topP,
    topK: DEFAULT_TOP_K,
    // Without a seed every request gets a fresh one: node-llama-cpp's default, the current second, would
    // give two requests in the same second the same "random" answer.
    seed: seed === undefined ? randomInt(2 ** 32) : ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32,
    stop,
  };
}
