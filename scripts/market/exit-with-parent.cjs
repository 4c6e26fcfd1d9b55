/**
 * Preloaded (`node --require …/exit-with-parent.cjs`) into the processes `npm start` and the
 * end-to-end tests start, so none outlives the process that started it.
 *
 * The parent gives this process a pipe as stdin and never writes to it. The OS closes the pipe when
 * the parent exits for any reason, SIGKILL included; this process then sees end-of-file and sends
 * itself SIGTERM, so its own clean shutdown runs (the agent flushes its journal, the indexer commits
 * and closes its database), and it is forced out if that takes longer than FORCE_EXIT_MS.
 *
 * Without a pipe on stdin (a terminal, /dev/null) it does nothing, and it does nothing in a worker
 * thread: Node also runs `--require` modules in the thread of ESM loader hooks (tsx registers some),
 * whose stdin is an empty stream. The pipe does not keep the process alive: a one-shot command
 * still exits when its work is done.
 */
"use strict";

const { fstatSync } = require("node:fs");
const { setTimeout } = require("node:timers");
const { isMainThread } = require("node:worker_threads");

const FORCE_EXIT_MS = 15_000;

function stdinIsPipe() {
  try {
    const stat = fstatSync(0);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}

if (isMainThread && stdinIsPipe()) {
  let signalled = false;
  const parentGone = () => {
    if (signalled) return;
    signalled = true;
    setTimeout(() => process.exit(1), FORCE_EXIT_MS).unref();
    process.kill(process.pid, "SIGTERM");
  };
  process.stdin.on("error", parentGone);
  process.stdin.on("end", parentGone);
  process.stdin.on("close", parentGone);
  process.stdin.resume();
  if (typeof process.stdin.unref === "function") process.stdin.unref();
}
