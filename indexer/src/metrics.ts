/**
 * Prometheus metrics, in a registry of each indexer's own (tests run several in one process).
 * Lag and indexed block are read at scrape time from what the process knows — the sync engine in
 * `start`, the checkpoint row in API-only replicas.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface ChainPosition {
  indexed: number;
  head: number;
  finalized: number;
}

export function createMetrics(position: () => Promise<ChainPosition | undefined>) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "indexer_process_" });

  const read = async (pick: (value: ChainPosition) => number, gauge: Gauge) => {
    const value = await position();
    if (value !== undefined) gauge.set(pick(value));
  };
  const gauges = {
    indexedBlock: new Gauge({
      name: "indexer_indexed_block",
      help: "Last block whose events are all indexed",
      registers: [registry],
      async collect() {
        await read((value) => value.indexed, this);
      },
    }),
    headBlock: new Gauge({
      name: "indexer_head_block",
      help: "Chain head last seen by the writer",
      registers: [registry],
      async collect() {
        await read((value) => value.head, this);
      },
    }),
    lagBlocks: new Gauge({
      name: "indexer_lag_blocks",
      help: "Blocks between the chain head and the indexed block",
      registers: [registry],
      async collect() {
        await read((value) => Math.max(0, value.head - value.indexed), this);
      },
    }),
    finalizedBlock: new Gauge({
      name: "indexer_finalized_block",
      help: "Blocks at or below this cannot be undone by a reorg",
      registers: [registry],
      async collect() {
        await read((value) => value.finalized, this);
      },
    }),
  };

  return {
    registry,
    ...gauges,
    eventsTotal: new Counter({ name: "indexer_events_total", help: "Market events indexed", registers: [registry] }),
    eventsPerSecond: new Gauge({
      name: "indexer_events_per_second",
      help: "Events indexed per second over the last 10 s",
      registers: [registry],
    }),
    reorgsTotal: new Counter({
      name: "indexer_reorgs_total",
      help: "Chain reorganisations undone",
      registers: [registry],
    }),
    reorgDepth: new Histogram({
      name: "indexer_reorg_depth_blocks",
      help: "Blocks undone per reorganisation",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
    batchSeconds: new Histogram({
      name: "indexer_batch_commit_seconds",
      help: "Time to apply and commit one batch of blocks",
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    rpcRequests: new Counter({
      name: "indexer_rpc_requests_total",
      help: "JSON-RPC requests by method, endpoint and outcome",
      labelNames: ["method", "endpoint", "outcome"] as const,
      registers: [registry],
    }),
    rpcSeconds: new Histogram({
      name: "indexer_rpc_request_seconds",
      help: "JSON-RPC request latency",
      labelNames: ["method"] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    graphqlRequests: new Counter({
      name: "indexer_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["route", "status"] as const,
      registers: [registry],
    }),
    probes: new Counter({
      name: "indexer_probes_total",
      help: "Provider health probes by outcome",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
