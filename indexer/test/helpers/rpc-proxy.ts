/**
 * A JSON-RPC proxy in front of a real node that behaves like public endpoints do: it can refuse
 * eth_getLogs over more than `maxBlocks` blocks (with the message a provider would send), and it
 * can answer eth_getLogs late, so that a backfill takes long enough to be interrupted.
 */
import { type Server, createServer } from "node:http";

interface JsonRpcRequest {
  id: number;
  method: string;
  params: [{ fromBlock: string; toBlock: string }];
}

export interface RpcProxyOptions {
  /** Refuse eth_getLogs spanning more blocks than this, with `refusal(maxBlocks)` as the message. */
  maxBlocks?: number;
  refusal?: (limit: number) => string;
  /** Delay every eth_getLogs answer by this many milliseconds. */
  getLogsDelayMs?: number;
}

export interface RpcProxy {
  url: string;
  server: Server;
  stats: { getLogs: number; refused: number };
}

export async function rpcProxy(target: string, options: RpcProxyOptions = {}): Promise<RpcProxy> {
  const {
    maxBlocks = Infinity,
    refusal = (limit) => `query exceeds max block range ${limit}`,
    getLogsDelayMs = 0,
  } = options;
  const stats = { getLogs: 0, refused: 0 };
  const forward = async (call: JsonRpcRequest): Promise<unknown> => {
    if (call.method === "eth_getLogs") {
      stats.getLogs++;
      const span = Number(call.params[0].toBlock) - Number(call.params[0].fromBlock) + 1;
      if (span > maxBlocks) {
        stats.refused++;
        return { jsonrpc: "2.0", id: call.id, error: { code: -32005, message: refusal(maxBlocks) } };
      }
      if (getLogsDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, getLogsDelayMs));
    }
    const answer = await fetch(target, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(call),
    });
    return (await answer.json()) as unknown;
  };
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      const parsed = JSON.parse(body) as JsonRpcRequest | JsonRpcRequest[];
      const requests = Array.isArray(parsed) ? parsed : [parsed];
      void Promise.all(requests.map(forward)).then(
        (answers) => {
          response.setHeader("content-type", "application/json");
          response.end(JSON.stringify(Array.isArray(parsed) ? answers : answers[0]));
        },
        // The node went away (a test stopping it): the client sees a failed request, as it would.
        () => response.destroy(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the RPC proxy has no port");
  return { url: `http://127.0.0.1:${address.port}`, server, stats };
}
