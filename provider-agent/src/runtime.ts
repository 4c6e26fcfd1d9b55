/**
 * Where the agent is in its life, shared by start-up and the HTTP layer: the server listens (and
 * answers /health with 503) while the agent starts; the routes that need the chain, the sessions or
 * the models get `not_ready` until everything is up, and again while it shuts down.
 */
import type { MarketDomain } from "../../protocol/index.js";
import type { CatalogEntry } from "./catalog/model-catalog.js";
import type { ChainFollowerStatus } from "./chain/chain-follower.js";
import type { InferenceBackend } from "./inference/backend.js";
import { Refusal } from "./refusal.js";
import type { ApprovalDesk } from "./sessions/approvals.js";
import type { SessionService } from "./sessions/session-service.js";

export type AgentPhase = "starting" | "ready" | "draining" | "stopped" | "failed";

/** What serving needs, present once the agent is ready. */
export interface Serving {
  sessions: SessionService;
  approvals: ApprovalDesk;
  backend: InferenceBackend;
  catalog: readonly CatalogEntry[];
  domain: MarketDomain;
  chainStatus: () => ChainFollowerStatus;
}

export class AgentRuntime {
  phase: AgentPhase = "starting";
  /** Chain time, unix seconds (the chain clock once the chain is reached). */
  now: () => number = () => Date.now() / 1000;
  /** The provider's address, once keys are known. */
  provider = "";
  /** What start-up is doing now (for /health while starting), or why it failed. */
  step = "starting";
  serving: Serving | undefined;
  /** Aborted when the shutdown grace period ends: every generation still running stops. */
  readonly shutdown = new AbortController();

  /** The serving state, or `not_ready` (starting, shutting down, failed). */
  requireServing(): Serving {
    if (this.phase !== "ready" || !this.serving) {
      throw new Refusal(
        "not_ready",
        this.phase === "starting" ? `the agent is starting (${this.step})` : `the agent is ${this.phase}`,
        { retryAfterSeconds: 5 },
      );
    }
    return this.serving;
  }
}
