/**
 * The `fetch` the session's `openai` client uses. For inference requests (`POST …/completions`) it
 * asks streams for their usage chunk, carries an unacknowledged receipt in `x-usage-receipt`,
 * measures time to first token and tokens per second, and, once the response is complete, has the
 * session sign and post the next cumulative receipt from the response's `usage`. It renews an
 * expired bearer token once. Everything else passes through untouched.
 */
import { RECEIPT_HEADER, encodeReceiptHeader } from "../../../protocol/agent-api.js";
import type { LiveSession, ResponseUsage } from "./live-session.js";
import { type StreamObservation, meterEventStream } from "./sse-meter.js";

interface CompletionBody {
  stream?: boolean;
  stream_options?: { include_usage?: boolean } & Record<string, unknown>;
}

interface CompletionUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
}

function urlOf(input: Parameters<typeof fetch>[0]): URL {
  if (typeof input === "string") return new URL(input);
  if (input instanceof URL) return input;
  return new URL(input.url);
}

function sessionTotals(value: unknown): ResponseUsage["sessionTotals"] {
  const totals = value as { input_tokens?: unknown; output_tokens?: unknown; requests?: unknown } | undefined;
  if (!totals || typeof totals.input_tokens !== "string" || typeof totals.output_tokens !== "string") return undefined;
  try {
    return {
      inputTokens: BigInt(totals.input_tokens),
      outputTokens: BigInt(totals.output_tokens),
      requests: typeof totals.requests === "number" ? totals.requests : Number.MAX_SAFE_INTEGER,
    };
  } catch {
    return undefined;
  }
}

function responseHeaders(response: Response): Headers {
  const headers = new Headers(response.headers);
  // The body handed on is decoded and may be re-framed: its original length and encoding no longer apply.
  headers.delete("content-length");
  headers.delete("content-encoding");
  return headers;
}

async function isExpiredToken(response: Response): Promise<boolean> {
  if (response.status !== 401) return false;
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return body.error?.code === "auth_expired";
  } catch {
    return false;
  }
}

export function createMeteredFetch(
  live: () => Promise<LiveSession>,
  baseFetch: typeof fetch,
  now: () => number = () => performance.now(),
): typeof fetch {
  return async (input, init) => {
    const session = await live();
    const url = urlOf(input);
    const metered = (init?.method ?? "GET").toUpperCase() === "POST" && /\/completions$/.test(url.pathname);
    let body = init?.body;
    let stream = false;
    let dropUsageChunk = false;
    if (metered && typeof body === "string") {
      try {
        const json = JSON.parse(body) as CompletionBody;
        if (json.stream === true) {
          stream = true;
          if (json.stream_options?.include_usage !== true) {
            json.stream_options = { ...json.stream_options, include_usage: true };
            dropUsageChunk = true;
            body = JSON.stringify(json);
          }
        }
      } catch {
        // Not JSON: the agent answers invalid_request; nothing to meter.
      }
    }
    const send = async () => {
      const headers = new Headers(init?.headers);
      headers.set("authorization", `Bearer ${await session.authToken()}`);
      const pending = metered ? session.unacknowledgedReceipt() : undefined;
      if (pending) headers.set(RECEIPT_HEADER, encodeReceiptHeader(pending));
      return baseFetch(input, { ...init, headers, body });
    };
    const startedAt = now();
    let response = await send();
    if (await isExpiredToken(response)) {
      session.invalidateToken();
      response = await send();
    }
    if (!metered || !response.ok || response.body === null) return response;

    if (!stream) {
      const text = await response.text();
      const finishedAt = now();
      try {
        const json = JSON.parse(text) as { usage?: CompletionUsage; session_usage?: unknown };
        if (json.usage) {
          const outputTokens = json.usage.completion_tokens ?? 0;
          const seconds = (finishedAt - startedAt) / 1000;
          void session
            .recordResponse({
              inputTokens: BigInt(json.usage.prompt_tokens ?? 0),
              outputTokens: BigInt(outputTokens),
              sessionTotals: sessionTotals(json.session_usage),
              tokensPerSecond: seconds > 0 && outputTokens > 0 ? outputTokens / seconds : undefined,
            })
            .catch(() => undefined);
        }
      } catch {
        // A body that is not JSON is the caller's problem to see; there is no usage to sign.
      }
      return new Response(text, {
        status: response.status,
        statusText: response.statusText,
        headers: responseHeaders(response),
      });
    }

    const onEnd = (observation: StreamObservation) => {
      if (!observation.usage) return;
      const outputTokens = observation.usage.completion_tokens ?? 0;
      const { firstTokenAt, lastTokenAt } = observation;
      const generating =
        firstTokenAt !== undefined && lastTokenAt !== undefined ? (lastTokenAt - firstTokenAt) / 1000 : 0;
      void session
        .recordResponse({
          inputTokens: BigInt(observation.usage.prompt_tokens ?? 0),
          outputTokens: BigInt(outputTokens),
          sessionTotals: sessionTotals(observation.sessionUsage),
          ttftMs: firstTokenAt === undefined ? undefined : firstTokenAt - startedAt,
          // The first token marks the start; the rest came in `generating` seconds.
          tokensPerSecond: generating > 0 && outputTokens > 1 ? (outputTokens - 1) / generating : undefined,
        })
        .catch(() => undefined);
    };
    return new Response(meterEventStream(response.body, { dropUsageChunk, now, onEnd }), {
      status: response.status,
      statusText: response.statusText,
      headers: responseHeaders(response),
    });
  };
}
