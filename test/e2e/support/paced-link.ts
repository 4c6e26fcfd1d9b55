/**
 * A slow link in front of a provider agent: a TCP proxy that passes requests at once and lets the
 * agent's answers through one piece at a time, `intervalMs` apart, a piece being a server-sent event
 * (text up to a blank line) or whatever else arrived. A stream of N tokens then takes at least
 * (N - 1) × intervalMs from first to last token, whatever the machine's load: a provider slower
 * than another for sure, which two agents sharing two busy CPU cores cannot promise by themselves.
 */
import { type Server, type Socket, connect, createServer } from "node:net";

const EVENT_END = "\n\n";

/** `chunk` cut after each blank line (the end of a server-sent event). */
function pieces(chunk: Buffer): Buffer[] {
  const result: Buffer[] = [];
  let start = 0;
  for (;;) {
    const end = chunk.indexOf(EVENT_END, start);
    if (end < 0) break;
    result.push(chunk.subarray(start, end + EVENT_END.length));
    start = end + EVENT_END.length;
  }
  if (start < chunk.length) result.push(chunk.subarray(start));
  return result;
}

export class PacedLink {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
    private readonly intervalMs: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.relay(client));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  private relay(client: Socket): void {
    const upstream = connect(this.target.port, this.target.host);
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    const queue: Buffer[] = [];
    let upstreamEnded = false;
    let timer: NodeJS.Timeout | undefined;
    const release = () => {
      timer = undefined;
      const piece = queue.shift();
      if (piece !== undefined && !client.destroyed) client.write(piece);
      if (queue.length > 0) timer = setTimeout(release, this.intervalMs);
      else if (upstreamEnded) client.end();
    };
    upstream.on("data", (chunk: Buffer) => {
      queue.push(...pieces(chunk));
      timer ??= setTimeout(release, this.intervalMs);
    });
    upstream.on("end", () => {
      upstreamEnded = true;
      if (timer === undefined && queue.length === 0) client.end();
    });
    client.on("close", () => {
      if (timer !== undefined) clearTimeout(timer);
      upstream.destroy();
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
