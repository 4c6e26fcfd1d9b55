/**
 * The agent as a real process, started through its `provider-agent` launcher, for what only a process
 * shows: SIGKILL (a crash), SIGTERM (a graceful stop), exit codes and what it prints.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { waitFor } from "./market.js";

const LAUNCHER = fileURLToPath(new URL("../../bin/provider-agent.mjs", import.meta.url));
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export interface ChildAgent {
  process: ChildProcess;
  /** Everything it printed (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

export async function writeYamlConfig(path: string, raw: Record<string, unknown>): Promise<string> {
  await writeFile(path, stringify(raw));
  return path;
}

/** Runs `provider-agent <args>` with `env` added to this process's environment. */
export function runAgentCommand(args: string[], env: Record<string, string>): ChildAgent {
  const child = spawn(process.execPath, [LAUNCHER, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { process: child, output: () => output, exited };
}

/** `provider-agent start`, waiting until /health answers 200 at `url`. */
export async function startChildAgent(
  configPath: string,
  url: string,
  env: Record<string, string>,
): Promise<ChildAgent> {
  const agent = runAgentCommand(["start", "--config", configPath], env);
  try {
    await Promise.race([
      waitFor(
        "the agent process to be ready",
        async () => (await fetch(`${url}/health`).catch(() => undefined))?.status === 200,
        90_000,
        200,
      ),
      agent.exited.then((code) => Promise.reject(new Error(`the agent exited (${code ?? "signal"})`))),
    ]);
  } catch (error) {
    agent.process.kill("SIGKILL");
    throw new Error(`the agent process did not start:\n${agent.output()}`, { cause: error });
  }
  return agent;
}

export const dataFile = (dataDir: string, name: string) => join(dataDir, name);
