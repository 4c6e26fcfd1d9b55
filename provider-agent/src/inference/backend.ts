/**
 * What the agent's HTTP layer asks of an inference backend: the embedded engine (node-llama-cpp,
 * in process) or an upstream OpenAI-compatible server (llama-server, vLLM, Ollama). The market's
 * rules (auth, credit, receipts) live above this line; only inference and its token counts below.
 */

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/** A JSON Schema object, as sent in OpenAI's `response_format: { type: "json_schema" }`. */
export type JsonSchema = Record<string, unknown>;

export type Prompt = { kind: "chat"; messages: ChatMessage[] } | { kind: "text"; text: string };

export interface SamplingOptions {
  /** Most tokens to generate; the caller has already applied its caps (config, credit, deposit). */
  maxTokens: number;
  /** 0 is greedy. */
  temperature?: number;
  topP?: number;
  seed?: number;
  /** Generation ends before any of these strings; they are not part of the output. */
  stop?: string[];
  /** Grammar-constrained output that parses as JSON matching this schema. */
  jsonSchema?: JsonSchema;
}

export interface GenerationRequest {
  /** The served model's id, as listed by `models()` (for an adapter: the adapter's id). */
  model: string;
  prompt: Prompt;
  sampling: SamplingOptions;
  /** Fairness key (the session id): queued requests are served round-robin across keys. */
  queueKey: string;
  /** Aborting stops generation at the next token (client gone, credit exhausted, shutdown). */
  signal: AbortSignal;
}

export interface GenerationChunk {
  /** New text; may be "" when a token ends inside a multi-byte character. Never invalid UTF-16. */
  text: string;
  /** Output tokens generated so far, this chunk's included. */
  outputTokens: number;
}

export type FinishReason = "stop" | "length" | "abort";

export interface GenerationResult {
  inputTokens: number;
  outputTokens: number;
  finishReason: FinishReason;
  /** From the request's admission to the first output token. */
  ttftMs: number;
  /** From the request's admission to the last output token. */
  durationMs: number;
}

export interface Generation extends AsyncIterable<GenerationChunk> {
  /** Prompt tokens, known once the request is admitted. */
  readonly inputTokens: number;
  /** Settles after the last chunk; rejects only on a backend failure (not on abort). */
  readonly result: Promise<GenerationResult>;
}

export interface ServedModel {
  /** The id requests name: the on-chain model id (0x…) of the model or adapter. */
  id: string;
  /** For a LoRA adapter, the id of the base model it is applied to. */
  baseModelId?: string;
  contextSize: number;
  /** Longest prompt accepted, in tokens. */
  maxPromptTokens: number;
  /** Parallel sequences (continuous batching slots). */
  parallel: number;
}

export interface ModelStatus {
  id: string;
  loaded: boolean;
  activeSequences: number;
  queued: number;
  /** Bytes of GPU memory the model uses, where known. */
  vramBytes?: number;
}

export interface BackendStatus {
  ready: boolean;
  gpu: string | false;
  models: ModelStatus[];
}

export interface InferenceBackend {
  models(): ServedModel[];
  status(): BackendStatus;
  /** Tokens `prompt` takes for `model` once templated (for credit checks before admission). */
  countPromptTokens(model: string, prompt: Prompt): Promise<number>;
  /**
   * Admits a request (queued or started) and returns its stream. Throws `UnknownModelError`,
   * `PromptTooLongError` or `QueueFullError` (from errors.ts) without side effects.
   */
  generate(request: GenerationRequest): Promise<Generation>;
  /** Stops admitting, aborts nothing: resolves when in-flight generations end, or rejects after `graceMs`. */
  drain(graceMs: number): Promise<void>;
  close(): Promise<void>;
}
