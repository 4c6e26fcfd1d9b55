/** Refusals of the inference layer; the HTTP layer maps `code` and `status` to a JSON error. */

export abstract class InferenceError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
}

export class UnknownModelError extends InferenceError {
  readonly code = "model_not_found";
  readonly status = 404;
  constructor(readonly model: string) {
    super(`model ${model} is not served here`);
    this.name = "UnknownModelError";
  }
}

export class PromptTooLongError extends InferenceError {
  readonly code = "prompt_too_long";
  readonly status = 400;
  constructor(
    readonly model: string,
    readonly promptTokens: number,
    readonly maxPromptTokens: number,
  ) {
    super(`the prompt takes ${promptTokens} tokens; model ${model} accepts at most ${maxPromptTokens}`);
    this.name = "PromptTooLongError";
  }
}

export class QueueFullError extends InferenceError {
  readonly code = "queue_full";
  readonly status = 429;
  constructor(
    readonly model: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`model ${model} is at capacity; retry in ${retryAfterSeconds} s`);
    this.name = "QueueFullError";
  }
}

export class BackendUnavailableError extends InferenceError {
  readonly code = "backend_unavailable";
  readonly status = 503;
  constructor(
    readonly model: string,
    detail: string,
  ) {
    super(`model ${model} cannot serve now: ${detail}`);
    this.name = "BackendUnavailableError";
  }
}

/**
 * A request the backend cannot run as asked: an empty prompt, a JSON schema that does not compile to a
 * grammar, sampling values out of range. Added by the inference layer; the HTTP layer should validate
 * first, this is the backstop.
 */
export class InvalidRequestError extends InferenceError {
  readonly code = "invalid_request";
  readonly status = 400;
  constructor(
    readonly model: string,
    readonly detail: string,
  ) {
    super(`invalid request for model ${model}: ${detail}`);
    this.name = "InvalidRequestError";
  }
}
