/**
 * The agent's Prometheus metrics, in a registry of its own (several agents can run in one process:
 * tests, the benchmark). `GET /metrics` serves it.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { AgentErrorCode } from "../../../protocol/index.js";

export interface AgentMetricsSources {
  activeSessions: () => number;
  queueDepth: () => { model: string; queued: number; active: number }[];
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly tokens = new Counter({
    name: "agent_tokens_total",
    help: "Tokens served, by model and kind (input: prompt, output: generated)",
    labelNames: ["model", "kind"] as const,
    registers: [this.registry],
  });
  readonly requests = new Counter({
    name: "agent_inference_requests_total",
    help: "Inference requests served, by model, endpoint and finish reason",
    labelNames: ["model", "endpoint", "finish_reason"] as const,
    registers: [this.registry],
  });
  readonly ttft = new Histogram({
    name: "agent_time_to_first_token_seconds",
    help: "From admission to the first output token",
    labelNames: ["model"] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly tokensPerSecond = new Histogram({
    name: "agent_output_tokens_per_second",
    help: "Output tokens per second of generation, per request",
    labelNames: ["model"] as const,
    buckets: [1, 5, 10, 20, 50, 100, 200, 500, 1000, 5000],
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: "agent_rejections_total",
    help: "Requests refused, by error code",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly earnings = new Counter({
    name: "agent_earnings_total",
    help: "Provider share of settled sessions, in token base units (as a float)",
    registers: [this.registry],
  });
  readonly claimed = new Counter({
    name: "agent_claimed_total",
    help: "Escrow balance claimed, in token base units (as a float)",
    registers: [this.registry],
  });
  readonly receipts = new Counter({
    name: "agent_receipts_accepted_total",
    help: "Usage receipts accepted and journaled",
    registers: [this.registry],
  });

  constructor(sources: AgentMetricsSources, options: { processMetrics?: boolean } = {}) {
    new Gauge({
      name: "agent_active_sessions",
      help: "Sessions open (or closing) on chain",
      registers: [this.registry],
      collect() {
        this.set(sources.activeSessions());
      },
    });
    new Gauge({
      name: "agent_queue_depth",
      help: "Requests waiting for a sequence, by model",
      labelNames: ["model"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const item of sources.queueDepth()) this.set({ model: item.model }, item.queued);
      },
    });
    new Gauge({
      name: "agent_active_sequences",
      help: "Sequences generating now, by model",
      labelNames: ["model"] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const item of sources.queueDepth()) this.set({ model: item.model }, item.active);
      },
    });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
  }

  reject(code: AgentErrorCode): void {
    this.rejections.inc({ reason: code });
  }
}
