/** The `indexer` command as a child process, the way an operator runs it (and kills it). */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/indexer.mjs", import.meta.url));

/** Every process spawned and not yet gone: `killAll` in an `after` hook, so a failed test leaves none behind. */
const running = new Set<IndexerProcess>();

export async function killAll(): Promise<void> {
  await Promise.all([...running].map((indexer) => indexer.kill("SIGKILL")));
}

export interface IndexerProcess {
  child: ChildProcess;
  /** The API's base URL, once the process logged it. */
  url: Promise<string>;
  /** Every log line so far (stderr). */
  output: string[];
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

export function spawnIndexer(args: string[], env: NodeJS.ProcessEnv = {}): IndexerProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  let resolveUrl!: (url: string) => void;
  let rejectUrl!: (error: Error) => void;
  const url = new Promise<string>((resolve, reject) => {
    resolveUrl = resolve;
    rejectUrl = reject;
  });
  url.catch(() => undefined);
  let buffer = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    buffer += chunk;
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    for (const line of lines) {
      output.push(line);
      const match = /GraphQL API on (http:\/\/[^/\s"]+)\/graphql/.exec(line);
      if (match) resolveUrl(match[1]!);
    }
  });
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  void exited.then(() => running.delete(indexer));
  void exited.then((code) =>
    rejectUrl(new Error(`the indexer exited (${code}) before serving:\n${output.join("\n")}`)),
  );
  const indexer: IndexerProcess = {
    child,
    url,
    output,
    exited,
    kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  running.add(indexer);
  return indexer;
}
