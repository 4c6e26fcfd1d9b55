/**
 * The agent's journal: an append-only file of JSON lines in the data dir, each fsync'd before the
 * caller is told it is written, each carrying a checksum.
 *
 *   <16 hex digits of sha256(json)> <json>\n
 *
 * Appends from concurrent callers are grouped into one write and one fsync (group commit). On open,
 * a last line without its newline or with a bad checksum is what a crash mid-append leaves: it is
 * dropped and the file is cut back to the last good line (its writer was never told it was written).
 * A bad line anywhere else is corruption: the file is copied aside for inspection, the line is
 * skipped and the agent says so loudly, but still starts (a crash loop would lose more).
 * `rewrite` replaces the file atomically (temp file, fsync, rename, fsync of the folder): compaction.
 */
import { createHash } from "node:crypto";
import { type FileHandle, copyFile, mkdir, open, readFile, rename, truncate } from "node:fs/promises";
import { join } from "node:path";
import type { Address, Hex } from "viem";
import type { UsageReceiptJson } from "../../../protocol/index.js";
import type { Logger } from "../log/logger.js";

/** What the journal holds; amounts are decimal strings. */
export type JournalRecord =
  /** An approval handed out: its nonce is spent for the agent, whether or not the session opens. */
  | { type: "approval"; nonce: string; bidId: Hex; user: Address; deadline: number; maxDeposit: string }
  /** A receipt the agent accepted (it becomes the best one if it charges more). */
  | { type: "receipt"; sessionId: Hex; receipt: UsageReceiptJson; signature: Hex }
  /** Cumulative usage served in a session (replaces the previous record's totals). */
  | {
      type: "served";
      sessionId: Hex;
      inputTokens: string;
      outputTokens: string;
      requests: number;
    }
  /** The agent countersigned the user's final receipt: it serves the session no more. */
  | {
      type: "countersigned";
      sessionId: Hex;
      receipt: UsageReceiptJson;
      userSignature: Hex;
      providerSignature: Hex;
    }
  /** A settling transaction the agent sent. */
  | { type: "close-sent"; sessionId: Hex; kind: "close" | "challenge" | "finalize"; txHash: Hex }
  /** The session settled on chain: compaction drops its records. */
  | { type: "settled"; sessionId: Hex };

export const JOURNAL_FILE = "journal.jsonl";

export class JournalCorruptError extends Error {
  constructor(
    readonly path: string,
    readonly line: number,
    detail: string,
  ) {
    super(`journal ${path}, line ${line}: ${detail}`);
    this.name = "JournalCorruptError";
  }
}

function checksum(json: string): string {
  return createHash("sha256").update(json).digest("hex").slice(0, 16);
}

export function encodeJournalLine(record: JournalRecord): string {
  const json = JSON.stringify(record);
  return `${checksum(json)} ${json}\n`;
}

function isRecord(value: unknown): value is JournalRecord {
  return typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string";
}

/** Parses one line (without its newline); undefined when it is damaged. */
function decodeJournalLine(line: string): JournalRecord | undefined {
  const space = line.indexOf(" ");
  if (space !== 16) return undefined;
  const json = line.slice(17);
  if (checksum(json) !== line.slice(0, 16)) return undefined;
  try {
    const value: unknown = JSON.parse(json);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

export interface JournalReadResult {
  records: JournalRecord[];
  /** A torn last line was dropped (a crash during an append). */
  tornTail: boolean;
  /** Damaged lines elsewhere, skipped (1-based line numbers). */
  corruptLines: number[];
}

interface PendingAppend {
  lines: string;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class Journal {
  private pending: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    private handle: FileHandle,
    private readonly logger: Logger,
  ) {}

  /** Opens (creating) the journal in `dataDir` and reads back what it holds. */
  static async open(dataDir: string, logger: Logger): Promise<{ journal: Journal } & JournalReadResult> {
    await mkdir(dataDir, { recursive: true });
    const path = join(dataDir, JOURNAL_FILE);
    const read = await readJournal(path, logger);
    const handle = await open(path, "a");
    return { journal: new Journal(path, handle, logger), ...read };
  }

  /** Appends records; resolves once they are on disk (fsync'd). */
  append(...records: JournalRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`journal ${this.path} is closed`));
    const lines = records.map(encodeJournalLine).join("");
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ lines, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.handle.write(batch.map((item) => item.lines).join(""));
        await this.handle.datasync();
        for (const item of batch) item.resolve();
      } catch (error) {
        this.logger.error({ err: error, path: this.path }, "journal write failed");
        for (const item of batch) item.reject(error);
      }
    }
    this.flushing = undefined;
  }

  /** Replaces the whole journal with `records`, atomically (the compaction of start-up). */
  async rewrite(records: readonly JournalRecord[]): Promise<void> {
    await this.flushing;
    const temporary = `${this.path}.tmp`;
    const file = await open(temporary, "w");
    try {
      await file.write(records.map(encodeJournalLine).join(""));
      await file.sync();
    } finally {
      await file.close();
    }
    await this.handle.close();
    await rename(temporary, this.path);
    await syncFolder(join(this.path, ".."));
    this.handle = await open(this.path, "a");
  }

  /** Waits for pending appends and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    await this.handle.close();
  }
}

async function syncFolder(path: string): Promise<void> {
  const folder = await open(path, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

/** Reads a journal file, cutting a torn tail off it (see the file's comment). */
export async function readJournal(path: string, logger: Logger): Promise<JournalReadResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { records: [], tornTail: false, corruptLines: [] };
    throw error;
  }
  const records: JournalRecord[] = [];
  const corruptLines: number[] = [];
  let tornTail = false;
  let goodLength = 0;
  let bytes = 0;
  let offset = 0;
  let lineNumber = 0;
  while (offset < text.length) {
    lineNumber += 1;
    const end = text.indexOf("\n", offset);
    const isLast = end === -1 || end === text.length - 1;
    const line = end === -1 ? text.slice(offset) : text.slice(offset, end);
    const record = end === -1 ? undefined : decodeJournalLine(line);
    bytes += Buffer.byteLength(line) + 1;
    if (record) {
      records.push(record);
      goodLength = bytes;
    } else if (isLast) {
      tornTail = true;
    } else if (line !== "") {
      corruptLines.push(lineNumber);
    }
    if (end === -1) break;
    offset = end + 1;
  }
  if (corruptLines.length > 0) {
    const copy = `${path}.corrupt-${Date.now()}`;
    await copyFile(path, copy);
    logger.error(
      { path, lines: corruptLines, copy },
      "journal has damaged lines (not a torn tail): they are skipped; the file was copied aside",
    );
  }
  if (tornTail) {
    logger.warn({ path, line: lineNumber }, "journal ends in a torn line (a crash mid-append): dropped");
    await truncate(path, goodLength);
  }
  return { records, tornTail, corruptLines };
}
