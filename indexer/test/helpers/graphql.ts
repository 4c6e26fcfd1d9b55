/** GraphQL over real HTTP, and subscriptions over SSE, as a client would use them. */
export interface GraphQLResponse<T> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

export async function graphql<T = Record<string, unknown>>(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<GraphQLResponse<T>> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse<T>;
}

/** The data of a query that must succeed. */
export async function query<T = Record<string, unknown>>(
  url: string,
  text: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const result = await graphql<T>(url, text, variables);
  if (result.errors !== undefined || result.data === undefined) {
    throw new Error(`GraphQL errors: ${JSON.stringify(result.errors)}`);
  }
  return result.data;
}

export interface Subscription<T> {
  /** Every event received so far. */
  events: T[];
  /** Resolves once the server has answered the subscription request (the stream is open). */
  opened: Promise<void>;
  close(): void;
}

/** Subscribes over SSE (graphql-sse "distinct connections" mode, which graphql-yoga speaks). */
export function subscribe<T>(url: string, text: string, variables: Record<string, unknown> = {}): Subscription<T> {
  const controller = new AbortController();
  const events: T[] = [];
  const opened = (async () => {
    const response = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ query: text, variables }),
      signal: controller.signal,
    });
    if (!response.ok || response.body === null) throw new Error(`subscription refused: HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let buffer = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) !== -1) {
            const message = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = message
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).trim())
              .join("\n");
            const event = /^event: ?(.*)$/m.exec(message)?.[1];
            if (data !== "" && (event === undefined || event === "next")) {
              const payload = JSON.parse(data) as { data?: T };
              if (payload.data !== undefined) events.push(payload.data);
            }
          }
        }
      } catch {
        // closed by the test
      }
    })();
  })();
  return { events, opened, close: () => controller.abort() };
}
