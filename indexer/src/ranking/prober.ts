/**
 * Availability: every interval, a GET of each active provider's `<endpoint>/health`, counted per
 * provider and UTC day (wall clock). A 2xx within the timeout is up; anything else is down.
 *
 * Endpoints are whatever providers registered on chain, so the request is as harmless as it can
 * be: GET, no redirects followed, no body read, a short timeout, http(s) only.
 */
import { sql } from "kysely";
import type { Logger } from "../log.js";
import type { Metrics } from "../metrics.js";
import type { Db } from "../store/database.js";
import { dayOf } from "./aggregates.js";

export interface ProberOptions {
  db: Db;
  intervalMs: number;
  timeoutMs: number;
  concurrency: number;
  logger: Logger;
  metrics: Metrics;
  /** Called after each round of probes (the writer then recomputes the stored rankings). */
  onRound?: () => void;
  /** Injectable for tests. */
  fetch?: typeof fetch;
}

export interface ProbeResult {
  ok: boolean;
  latencyMs: number | null;
  error: string | null;
}

export function healthUrl(endpoint: string): URL | null {
  try {
    const url = new URL(endpoint);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/health`;
    url.search = "";
    url.hash = "";
    return url;
  } catch {
    return null;
  }
}

export class HealthProber {
  readonly #options: ProberOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: ProberOptions) {
    this.#options = options;
  }

  start(): void {
    const tick = () => {
      this.#running ??= this.probeAll()
        .catch((error: unknown) => this.#options.logger.warn("health probes failed", { error }))
        .finally(() => (this.#running = undefined));
    };
    this.#timer = setInterval(tick, this.#options.intervalMs);
    this.#timer.unref();
    tick();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** Probes every active provider once and records the outcomes. */
  async probeAll(): Promise<void> {
    const { db, concurrency } = this.#options;
    const providers = await db
      .selectFrom("providers")
      .select(["address", "endpoint"])
      .where("active", "=", true)
      .execute();
    const queue = [...providers];
    const results: { provider: string; result: ProbeResult }[] = [];
    await Promise.all(
      Array.from({ length: Math.min(concurrency, queue.length) }, async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
          results.push({ provider: next.address, result: await this.probe(next.endpoint) });
        }
      }),
    );
    const now = Date.now();
    for (const { provider, result } of results) {
      this.#options.metrics.probes.inc({ outcome: result.ok ? "up" : "down" });
      await sql`
        INSERT INTO probes (provider, day, ok, total, last_probe_at, last_ok, last_latency_ms, last_error)
        VALUES (${provider}, ${dayOf(now / 1000)}, ${result.ok ? 1 : 0}, 1, ${now}, ${result.ok},
                ${result.latencyMs}, ${result.error})
        ON CONFLICT (provider, day) DO UPDATE SET
          ok = probes.ok + EXCLUDED.ok, total = probes.total + 1, last_probe_at = EXCLUDED.last_probe_at,
          last_ok = EXCLUDED.last_ok, last_latency_ms = EXCLUDED.last_latency_ms, last_error = EXCLUDED.last_error
      `.execute(db);
    }
    if (results.length > 0) this.#options.onRound?.();
  }

  async probe(endpoint: string): Promise<ProbeResult> {
    const url = healthUrl(endpoint);
    if (url === null) return { ok: false, latencyMs: null, error: "the endpoint is not an http(s) URL" };
    const started = performance.now();
    try {
      const response = await (this.#options.fetch ?? fetch)(url, {
        redirect: "manual",
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      });
      await response.body?.cancel();
      const latencyMs = Math.round(performance.now() - started);
      return response.ok
        ? { ok: true, latencyMs, error: null }
        : { ok: false, latencyMs, error: `HTTP ${response.status}` };
    } catch (error) {
      return { ok: false, latencyMs: null, error: error instanceof Error ? error.message : String(error) };
    }
  }
}
