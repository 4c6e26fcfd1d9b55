/**
 * A small GraphQL client for the indexer: POST { query, variables }, errors as `IndexerError`s
 * that name the indexer and what it said.
 */
import { IndexerError } from "../errors.js";

export interface IndexerClient {
  url: string;
  request<T>(query: string, variables: Record<string, unknown>, parse: (data: unknown) => T): Promise<T>;
}

export function createIndexerClient(url: string, fetchImpl: typeof fetch = fetch, timeoutMs = 10_000): IndexerClient {
  return {
    url,
    async request(query, variables, parse) {
      let response: Response;
      try {
        response = await fetchImpl(url, {
          method: "POST",
          headers: { "content-type": "application/json", accept: "application/json" },
          body: JSON.stringify({ query, variables }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw new IndexerError(url, `unreachable (${(error as Error).message})`, { cause: error });
      }
      let body: { data?: unknown; errors?: { message: string }[] };
      try {
        body = (await response.json()) as typeof body;
      } catch (error) {
        throw new IndexerError(url, `answered ${response.status} without JSON`, { cause: error });
      }
      if (body.errors?.length) {
        throw new IndexerError(url, body.errors.map((error) => error.message).join("; "));
      }
      if (!response.ok || body.data === undefined || body.data === null) {
        throw new IndexerError(url, `answered ${response.status} without data`);
      }
      try {
        return parse(body.data);
      } catch (error) {
        throw new IndexerError(url, `unexpected answer: ${(error as Error).message}`, {
          cause: error,
          hint: "the indexer's schema may be of another version than this client",
        });
      }
    },
  };
}
