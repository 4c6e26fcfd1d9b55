/**
 * `npm start -- <args>` as a user runs it (through npm itself), its output collected, the processes
 * below it recorded as they appear, so a test can check that none is left once it stopped.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { waitUntil } from "../../../scripts/market/wait.js";
import { commandLine, descendantsOf, isAlive } from "./process-tree.js";
import { ROOT } from "./market.js";

export class NpmStart {
  private text = "";
  /** Every process seen below npm, with its command line. */
  readonly seen = new Map<number, string>();
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly poller: NodeJS.Timeout;

  private constructor(readonly npm: ChildProcess) {
    for (const stream of [npm.stdout, npm.stderr])
      stream?.on("data", (chunk: Buffer) => (this.text += chunk.toString()));
    this.exited = new Promise((resolve) => npm.once("exit", (code, signal) => resolve({ code, signal })));
    this.poller = setInterval(() => this.record(), 200);
    void this.exited.then(() => clearInterval(this.poller));
  }

  /** Starts `npm start -- <args>` in its own process group (so only npm gets the signals sent to it). */
  static launch(args: string[]): NpmStart {
    const npmCli = process.env.npm_execpath;
    const [command, prefix] = npmCli?.endsWith(".js") ? [process.execPath, [npmCli]] : ["npm", []];
    const npm = spawn(command, [...prefix, "start", "--", ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", MARKET_START_ONCE: "" },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    return new NpmStart(npm);
  }

  get pid(): number {
    if (this.npm.pid === undefined) throw new Error("npm did not start");
    return this.npm.pid;
  }

  output(): string {
    return this.text;
  }

  private record(): void {
    if (this.npm.pid === undefined) return;
    for (const pid of descendantsOf(this.npm.pid)) {
      if (!this.seen.has(pid)) this.seen.set(pid, commandLine(pid) ?? "?");
    }
  }

  /** Waits for `text` in the output; fails if npm exits first. */
  async waitForOutput(text: string, timeoutMs: number): Promise<void> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    try {
      await waitUntil(
        `"${text}" in npm start's output`,
        () => {
          if (this.text.includes(text)) return true;
          if (exited) throw new Error("npm start exited");
          return false;
        },
        { timeoutMs, intervalMs: 100 },
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; its output:\n${this.text}`, { cause: error });
    }
    this.record();
  }

  /** The recorded processes still alive. */
  survivors(): string[] {
    return [...this.seen].filter(([pid]) => isAlive(pid)).map(([pid, command]) => `${pid} ${command}`);
  }

  /** Waits until every recorded process is gone. */
  async allGone(timeoutMs = 30_000): Promise<void> {
    await waitUntil("every process npm start started to exit", () => this.survivors().length === 0, {
      timeoutMs,
      intervalMs: 100,
    }).catch((error: unknown) => {
      throw new Error(`left running: ${this.survivors().join("; ")}`, { cause: error });
    });
  }

  /** Kills whatever is left (after a failure). */
  cleanUp(): void {
    clearInterval(this.poller);
    for (const [pid] of this.seen) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    if (this.npm.pid !== undefined && isAlive(this.npm.pid)) process.kill(-this.npm.pid, "SIGKILL");
  }
}
