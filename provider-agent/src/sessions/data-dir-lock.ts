/**
 * One agent per data dir: two writing one journal would interleave nonces and receipts. The lock is a
 * file holding the owner's pid, created exclusively; a lock left by a process that is gone (a crash,
 * SIGKILL) is taken over, so a restart after a crash never needs a hand.
 */
import { mkdir, open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

export class DataDirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly pid: number,
  ) {
    super(`data dir ${dataDir} is in use by process ${pid} (another agent?); give each agent its own dataDir`);
    this.name = "DataDirLockedError";
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface DataDirLock {
  release(): Promise<void>;
}

/** Takes the data dir's lock (in process: the same dir twice is refused too). */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, "agent.lock");
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const file = await open(path, "wx");
      await file.write(`${process.pid}\n`);
      await file.sync();
      await file.close();
      let released = false;
      return {
        async release() {
          if (released) return;
          released = true;
          await rm(path, { force: true });
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (Number.isSafeInteger(pid) && pid > 0 && isAlive(pid)) throw new DataDirLockedError(dataDir, pid);
      await rm(path, { force: true });
    }
  }
  throw new DataDirLockedError(dataDir, -1);
}
