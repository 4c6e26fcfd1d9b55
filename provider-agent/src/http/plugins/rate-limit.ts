/**
 * Rate limits, per client IP on every route but /health and /metrics, and per session on inference.
 * Both answer 429 `rate_limited` with `Retry-After` (seconds), in the agent's error shape.
 */
import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Hex } from "viem";
import { Refusal } from "../../refusal.js";

const MINUTE_MS = 60_000;
const UNLIMITED_PATHS = new Set(["/health", "/metrics"]);

export type SessionRateLimiter = (request: FastifyRequest, sessionId: Hex) => Promise<void>;

export async function registerRateLimits(
  app: FastifyInstance,
  limits: { perIp: number; perSession: number },
): Promise<SessionRateLimiter> {
  await app.register(rateLimit, { global: false });
  if (limits.perIp > 0) {
    const byIp = app.createRateLimit({ max: limits.perIp, timeWindow: MINUTE_MS });
    app.addHook("onRequest", async (request) => {
      if (UNLIMITED_PATHS.has(request.url.split("?")[0] ?? "")) return;
      const result = await byIp(request);
      if (!result.isAllowed) {
        throw new Refusal("rate_limited", `more than ${limits.perIp} requests a minute from ${request.ip}`, {
          retryAfterSeconds: Math.max(1, result.ttlInSeconds),
        });
      }
    });
  }
  if (limits.perSession <= 0) return () => Promise.resolve();
  const sessionKeys = new WeakMap<FastifyRequest, string>();
  const bySession = app.createRateLimit({
    max: limits.perSession,
    timeWindow: MINUTE_MS,
    keyGenerator: (request) => sessionKeys.get(request) ?? request.ip,
  });
  return async (request, sessionId) => {
    sessionKeys.set(request, sessionId.toLowerCase());
    const result = await bySession(request);
    if (!result.isAllowed) {
      throw new Refusal("rate_limited", `more than ${limits.perSession} requests a minute for session ${sessionId}`, {
        retryAfterSeconds: Math.max(1, result.ttlInSeconds),
      });
    }
  };
}
