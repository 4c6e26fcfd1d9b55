/**
 * One request on one context sequence: evaluate the prompt, sample until a stop condition, stream
 * each token's text. The counts it reports are what the sequence evaluated and sampled, which is what
 * the market charges for.
 */
import { type LlamaContextSequence, type LlamaGrammar, LlamaGrammarEvaluationState } from "node-llama-cpp";

import type { FinishReason } from "../backend.js";
import type { GenerationStream } from "../generation-stream.js";
import { StopStringMatcher } from "../text/stop-string-matcher.js";
import { TokenTextDecoder } from "../text/token-text-decoder.js";
import type { TemplatedPrompt } from "./prompt-templater.js";
import type { ResolvedSampling } from "./sampling.js";

export interface SequenceGenerationInput {
  sequence: LlamaContextSequence;
  prompt: TemplatedPrompt;
  sampling: ResolvedSampling;
  grammar?: LlamaGrammar;
  stream: GenerationStream;
  /** The request's signal, or the engine closing. */
  signal: AbortSignal;
  /** `performance.now()` when the request was admitted; the times reported count from there. */
  admittedAt: number;
}

/**
 * Runs the request to its end and finishes `stream`; throws only if llama.cpp fails. On abort the
 * stream finishes at once with what was streamed so far; the token being computed then is dropped
 * (not streamed, not counted) and the sequence is free after it.
 */
export async function generateOnSequence(input: SequenceGenerationInput): Promise<void> {
  const { sequence, prompt, sampling, stream, signal, admittedAt } = input;
  const model = sequence.model;
  const inputTokens = prompt.tokens.length;
  let outputTokens = 0;
  let firstTokenAt: number | undefined;
  let lastTokenAt: number | undefined;
  const finish = (finishReason: FinishReason): void => {
    const now = performance.now();
    stream.finish({
      inputTokens,
      outputTokens,
      finishReason,
      ttftMs: (firstTokenAt ?? now) - admittedAt,
      durationMs: (lastTokenAt ?? now) - admittedAt,
    });
  };

  // Sampled tokens must fit in the sequence without a context shift (which would drop the prompt's start).
  const outputCap = Math.min(sampling.maxTokens, sequence.contextSize - inputTokens);
  const decoder = new TokenTextDecoder(
    (tokens, preceding) => model.detokenize(tokens, false, preceding),
    prompt.tokens,
  );
  const grammarStops = (input.grammar?.stopGenerationTriggers ?? []).map((trigger) => trigger.toString());
  const matcher = new StopStringMatcher([...sampling.stop, ...prompt.stopStrings, ...grammarStops]);
  const grammarEvaluationState = input.grammar
    ? new LlamaGrammarEvaluationState({ model, grammar: input.grammar })
    : undefined;

  await sequence.clearHistory();
  if (signal.aborted) {
    // Aborted before the prompt went in: nothing was evaluated, nothing is charged.
    const waited = performance.now() - admittedAt;
    stream.finish({ inputTokens: 0, outputTokens: 0, finishReason: "abort", ttftMs: waited, durationMs: waited });
    return;
  }
  // From here the prompt is evaluated whole (a queued decode cannot be withdrawn), so it counts.
  const onAbort = (): void => finish("abort");
  signal.addEventListener("abort", onAbort, { once: true });
  const tokens = sequence.evaluate(prompt.tokens, {
    temperature: sampling.temperature,
    topP: sampling.topP,
    topK: sampling.topK,
    minP: 0,
    seed: sampling.seed,
    grammarEvaluationState,
    // Counted like any other sampled token (as llama-server and vLLM do), then the generation ends.
    yieldEogToken: true,
  });
  try {
    for (;;) {
      const next = await tokens.next();
      if (stream.done) return;
      if (next.done) {
        // node-llama-cpp ended without an end-of-generation token (its sampler was disposed): nothing more comes.
        finish("stop");
        return;
      }
      const token = next.value;
      outputTokens++;
      lastTokenAt = performance.now();
      firstTokenAt ??= lastTokenAt;

      const endOfGeneration = model.isEogToken(token) || prompt.stopTokens.has(token);
      let { text, stopped } = matcher.push(endOfGeneration ? decoder.flush() : decoder.push(token));
      const lastToken = endOfGeneration || stopped || outputTokens >= outputCap;
      if (lastToken && !stopped) {
        const tail = matcher.push(decoder.flush());
        text += tail.text;
        stopped = tail.stopped;
        if (!stopped) text += matcher.flush();
      }
      stream.push({ text, outputTokens });
      if (lastToken) {
        finish(endOfGeneration || stopped ? "stop" : "length");
        return;
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    // Ends node-llama-cpp's generator, which releases the sequence's evaluation lock.
    await tokens.return();
  }
}
