/**
 * The processes of a local market (hardhat node, indexer, provider agents, a consumer), each
 * started under a name, its output shown with that name, watched for
 * an unexpected exit, and stopped in the reverse order of their start.
 *
 * Every child is started with `exit-with-parent.cjs` on a stdin pipe: if this process dies, even
 * by SIGKILL, the children stop themselves. Children may run in their own process group
 * (`detached`), so that a Ctrl-C reaches only this process, which stops them in order.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { EXIT_WITH_PARENT, stopProcess } from "../local-chain";
import { formatLogLine } from "./log-lines";
import type { PrefixedOutput } from "./prefixed-output";

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `killed by ${status.signal}` : `exit code ${status.code ?? "unknown"}`;
}

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<ExitStatus>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface NodeProcessOptions {
  /** Arguments after `node` (a script and its arguments, or `--import tsx script.ts …`). */
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Format JSON log lines for the terminal (default true). */
  formatLogs?: boolean;
  /** Show partial lines as they arrive (a chat stream). */
  streaming?: boolean;
  /** Expected to exit by itself (a one-shot command): its exit is not a failure of the market. */
  oneShot?: boolean;
}

export interface ProcessGroupOptions {
  output: PrefixedOutput;
  /** Own process groups for the children (npm start: Ctrl-C reaches only the parent). */
  detached?: boolean;
  /** Called when a long-running process exits while the group is not stopping. */
  onUnexpectedExit?: (process: ManagedProcess, status: ExitStatus) => void;
  /** How long a process may take to stop after SIGTERM before SIGKILL. */
  stopGraceMs?: number;
}

export class ProcessGroup {
  private readonly running: ManagedProcess[] = [];
  private stopping = false;

  constructor(private readonly options: ProcessGroupOptions) {}

  /** Starts `node <args>` as the process `name`. */
  startNode(name: string, options: NodeProcessOptions): ManagedProcess {
    const child = spawn(process.execPath, ["--require", EXIT_WITH_PARENT, ...options.args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
      detached: this.options.detached ?? false,
    });
    const source = this.options.output.source(name, {
      ...(options.formatLogs === false ? {} : { format: formatLogLine }),
      ...(options.streaming ? { streaming: true } : {}),
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding("utf8");
      stream.on("data", (text: string) => source.write(text));
    }
    child.once("exit", () => source.end());
    return this.adopt(name, child, { oneShot: options.oneShot ?? false });
  }

  /** Tracks a process started elsewhere (the hardhat node of `startHardhatNode`). */
  adopt(name: string, child: ChildProcess, options: { oneShot?: boolean } = {}): ManagedProcess {
    const exited = new Promise<ExitStatus>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        resolve({ code: child.exitCode, signal: child.signalCode });
        return;
      }
      child.once("exit", (code, signal) => resolve({ code, signal }));
      // A process that cannot start (spawn error) never emits "exit".
      child.once("error", () => resolve({ code: child.exitCode ?? 127, signal: null }));
    });
    const managed: ManagedProcess = {
      name,
      child,
      exited,
      stop: (graceMs = this.options.stopGraceMs ?? 10_000) => stopProcess(child, graceMs),
    };
    this.running.push(managed);
    void exited.then((status) => {
      const index = this.running.indexOf(managed);
      if (index >= 0) this.running.splice(index, 1);
      if (!this.stopping && !options.oneShot) this.options.onUnexpectedExit?.(managed, status);
    });
    return managed;
  }

  /** The processes running now, in the order they started. */
  list(): readonly ManagedProcess[] {
    return [...this.running];
  }

  /** Stops every process, the last started first, each waited for. */
  async stopAll(): Promise<void> {
    this.stopping = true;
    for (const managed of [...this.running].reverse()) await managed.stop();
  }
}
