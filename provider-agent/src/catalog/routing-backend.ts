/**
 * One `InferenceBackend` over several: the embedded engine for local GGUF files and one upstream
 * backend per OpenAI-compatible server, each request routed by its model id. (An adapter of the
 * engine's interface on the agent's side: the engines each serve their own models.)
 */
import type {
  BackendStatus,
  Generation,
  GenerationRequest,
  InferenceBackend,
  Prompt,
  ServedModel,
} from "../inference/backend.js";
import { UnknownModelError } from "../inference/errors.js";

export class RoutingBackend implements InferenceBackend {
  private readonly byModel = new Map<string, InferenceBackend>();

  constructor(private readonly backends: readonly InferenceBackend[]) {
    for (const backend of backends) {
      for (const model of backend.models()) {
        const id = model.id.toLowerCase();
        if (this.byModel.has(id)) throw new RangeError(`model ${model.id} is served by two backends`);
        this.byModel.set(id, backend);
      }
    }
  }

  private route(model: string): InferenceBackend {
    const backend = this.byModel.get(model.toLowerCase());
    if (!backend) throw new UnknownModelError(model);
    return backend;
  }

  models(): ServedModel[] {
    return this.backends.flatMap((backend) => backend.models());
  }

  status(): BackendStatus {
    const statuses = this.backends.map((backend) => backend.status());
    return {
      ready: statuses.every((status) => status.ready),
      gpu: statuses.find((status) => status.gpu !== false)?.gpu ?? false,
      models: statuses.flatMap((status) => status.models),
    };
  }

  countPromptTokens(model: string, prompt: Prompt): Promise<number> {
    return this.route(model).countPromptTokens(model, prompt);
  }

  generate(request: GenerationRequest): Promise<Generation> {
    return this.route(request.model).generate(request);
  }

  async drain(graceMs: number): Promise<void> {
    await Promise.all(this.backends.map((backend) => backend.drain(graceMs)));
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.map((backend) => backend.close()));
  }
}
