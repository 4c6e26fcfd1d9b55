/**
 * The plumbing under `npm start` and the end-to-end tests, on small stand-in processes (fast): a
 * child stops when its parent dies, also under SIGKILL and also when it loads tsx's ESM hooks; the
 * process group reports an unexpected exit and stops the rest in reverse order; the terminal output
 * keeps each source's lines whole and a token stream readable; JSON log lines become short ones.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { describe, test } from "node:test";
import { EXIT_WITH_PARENT } from "../../scripts/local-chain.js";
import { formatLogLine } from "../../scripts/market/log-lines.js";
import { PrefixedOutput } from "../../scripts/market/prefixed-output.js";
import { type ExitStatus, ProcessGroup } from "../../scripts/market/processes.js";
import { waitUntil } from "../../scripts/market/wait.js";
import { ROOT } from "./support/market.js";
import { isAlive } from "./support/process-tree.js";

/** A parent that starts a guarded child (which reports its pid and SIGTERM), then idles. */
const PARENT = `
const { spawn } = require("node:child_process");
const child = spawn(process.execPath, ["--require", process.env.GUARD, "-e", process.env.CHILD], {
  stdio: ["pipe", "inherit", "inherit"],
});
setInterval(() => undefined, 60_000);
`;
const DAEMON = `
process.on("SIGTERM", () => { console.log("SIGTERM"); process.exit(0); });
console.log(String(process.pid));
setInterval(() => undefined, 60_000);
`;

void describe("exit-with-parent.cjs", () => {
  void test("a child stops (SIGTERM, its own clean exit) when its parent is SIGKILLed", async () => {
    const parent = spawn(process.execPath, ["-e", PARENT], {
      env: { ...process.env, GUARD: EXIT_WITH_PARENT, CHILD: DAEMON },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const lines = createInterface({ input: parent.stdout });
    const [pidLine] = (await once(lines, "line")) as [string];
    const childPid = Number(pidLine);
    assert.ok(isAlive(childPid));
    parent.kill("SIGKILL");
    await waitUntil("the child to exit after its parent", () => !isAlive(childPid), { timeoutMs: 10_000 });
  });

  void test("does nothing in the ESM loader's worker thread (tsx): the process keeps running", async () => {
    const child = spawn(
      process.execPath,
      ["--require", EXIT_WITH_PARENT, "--import", "tsx", "-e", "setTimeout(() => process.exit(7), 500)"],
      { cwd: ROOT, stdio: ["pipe", "inherit", "inherit"] },
    );
    const [code, signal] = (await once(child, "exit")) as [number | null, NodeJS.Signals | null];
    assert.deepEqual({ code, signal }, { code: 7, signal: null }, "exited by itself, not by a SIGTERM");
  });

  void test("does not keep a one-shot command alive", async () => {
    const child = spawn(process.execPath, ["--require", EXIT_WITH_PARENT, "-e", "0"], {
      stdio: ["pipe", "inherit", "inherit"],
    });
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0);
  });
});

void describe("ProcessGroup", () => {
  void test("reports a process that exits on its own, not a one-shot one, and stops the rest last-first", async () => {
    const lines: string[] = [];
    const exits: string[] = [];
    const group = new ProcessGroup({
      output: new PrefixedOutput((text) => lines.push(text)),
      stopGraceMs: 5_000,
      onUnexpectedExit: (managed, status: ExitStatus) => exits.push(`${managed.name} ${status.code}`),
    });
    const daemon = (name: string) =>
      group.startNode(name, {
        args: [
          "-e",
          `process.on("SIGTERM", () => { console.log("${name} stopping"); process.exit(0); }); console.log("up"); setInterval(() => undefined, 60_000);`,
        ],
        cwd: ROOT,
      });
    const first = daemon("first");
    const second = daemon("second");
    const oneShot = group.startNode("one-shot", { args: ["-e", "process.exit(3)"], cwd: ROOT, oneShot: true });
    const crash = group.startNode("crash", { args: ["-e", "process.exit(4)"], cwd: ROOT });
    await Promise.all([oneShot.exited, crash.exited]);
    await waitUntil("both daemons up", () => lines.join("").split("up").length === 3, { timeoutMs: 10_000 });
    assert.deepEqual(exits, ["crash 4"]);

    await group.stopAll();
    assert.deepEqual(await Promise.all([first.exited, second.exited]), [
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
    const stopping = lines
      .join("")
      .split("\n")
      .filter((line) => line.includes("stopping"));
    assert.deepEqual(stopping, ["second   │ second stopping", "first    │ first stopping"]);
    assert.deepEqual(exits, ["crash 4"], "a stop is not an unexpected exit");
  });
});

void describe("PrefixedOutput", () => {
  void test("whole lines for log sources; a streaming source shown as it comes, its line ended when another speaks", () => {
    let text = "";
    const output = new PrefixedOutput((chunk) => (text += chunk), { width: 5 });
    const log = output.source("log", { format: formatLogLine });
    const chat = output.source("chat", { streaming: true });
    chat.write("Hel");
    chat.write("lo ");
    log.write('{"level":30,"msg":"ready"');
    log.write("}\nhalf");
    chat.write("world\nbye");
    chat.end();
    log.end();
    output.line("done");
    assert.equal(
      text,
      ["chat  │ Hello ", "log   │ ready", "chat  │ world", "chat  │ bye", "log   │ half", "done", ""].join("\n"),
    );
  });
});

void describe("formatLogLine", () => {
  void test("the agent's and the indexer's JSON records as short lines; other lines unchanged; progress dropped", () => {
    assert.equal(
      formatLogLine(
        '{"level":50,"time":1,"pid":9,"component":"chain","msg":"claim failed","err":{"message":"reverted","stack":"…","cause":{"message":"nonce"}},"tx":"0xab"}',
      ),
      "ERROR [chain] claim failed  err=reverted: nonce tx=0xab",
    );
    assert.equal(
      formatLogLine('{"time":"2026-01-01T00:00:00.000Z","level":"info","msg":"backfill","blocks":12}'),
      "backfill  blocks=12",
    );
    assert.equal(formatLogLine("Compiled 12 Solidity files"), "Compiled 12 Solidity files");
    assert.equal(formatLogLine('{"level":30,"msg":"model load progress","percent":50}'), undefined);
  });
});
