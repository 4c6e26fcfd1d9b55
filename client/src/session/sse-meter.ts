/**
 * Watches an OpenAI-style server-sent-event stream on its way to the caller: when the first and
 * last tokens arrive, and the final `usage` chunk (with the agent's `session_usage`). The caller's
 * stream is unchanged, except that a usage-only chunk the caller did not ask for (the client adds
 * `stream_options.include_usage` itself) is taken out.
 */
export interface StreamObservation {
  firstTokenAt: number | undefined;
  lastTokenAt: number | undefined;
  usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
  sessionUsage: unknown;
}

interface StreamChunk {
  choices?: { delta?: { content?: unknown; reasoning_content?: unknown }; text?: unknown }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  session_usage?: unknown;
}

const EVENT_BOUNDARY = /\r?\n\r?\n/;

export function meterEventStream(
  body: ReadableStream<Uint8Array>,
  options: { dropUsageChunk: boolean; now: () => number; onEnd: (observation: StreamObservation) => void },
): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  const observation: StreamObservation = {
    firstTokenAt: undefined,
    lastTokenAt: undefined,
    usage: undefined,
    sessionUsage: undefined,
  };
  let buffer = "";

  /** The event's text to forward, or undefined to drop it. */
  const inspect = (event: string): string | undefined => {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n");
    if (data === "" || data === "[DONE]") return event;
    let chunk: StreamChunk;
    try {
      chunk = JSON.parse(data) as StreamChunk;
    } catch {
      return event;
    }
    const hasToken = (chunk.choices ?? []).some((choice) => {
      const content = choice.delta?.content ?? choice.delta?.reasoning_content ?? choice.text;
      return typeof content === "string" && content.length > 0;
    });
    if (hasToken) {
      const now = options.now();
      observation.firstTokenAt ??= now;
      observation.lastTokenAt = now;
    }
    if (chunk.usage) {
      observation.usage = chunk.usage;
      observation.sessionUsage = chunk.session_usage;
      if (options.dropUsageChunk && (chunk.choices ?? []).length === 0) return undefined;
    }
    return event;
  };

  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(bytes, controller) {
        buffer += decoder.decode(bytes, { stream: true });
        for (;;) {
          const match = EVENT_BOUNDARY.exec(buffer);
          if (!match) break;
          const event = buffer.slice(0, match.index);
          buffer = buffer.slice(match.index + match[0].length);
          const forwarded = inspect(event);
          if (forwarded !== undefined) controller.enqueue(encoder.encode(`${forwarded}\n\n`));
        }
      },
      flush(controller) {
        buffer += decoder.decode();
        if (buffer.trim() !== "") {
          const forwarded = inspect(buffer);
          if (forwarded !== undefined) controller.enqueue(encoder.encode(forwarded));
        }
        options.onEnd(observation);
      },
    }),
  );
}
