/**
 * The sha256 of a model file (what the chain's ModelRegistry records), with a cache so a restart does
 * not re-read tens of gigabytes: entries are keyed by absolute path and valid while the file's size and
 * modification time are unchanged. The cache is a JSON file in the data dir, rewritten atomically.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";

export interface HashResult {
  /** Lowercase hex, 64 characters (no 0x). */
  sha256: string;
  /** True when the cache answered without reading the file. */
  cached: boolean;
}

interface CacheEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
}

const CACHE_VERSION = 1;

/** Streams the file through sha256. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

export class ModelHashCache {
  private entries: Map<string, CacheEntry> | undefined;
  private readonly hashing = new Map<string, Promise<HashResult>>();
  private saving: Promise<void> = Promise.resolve();

  /** `cacheFile`: e.g. `<data dir>/model-hashes.json`; created on first save. */
  constructor(readonly cacheFile: string) {}

  /** The file's sha256, from the cache when its size and mtime match, else read and remembered. */
  sha256(path: string): Promise<HashResult> {
    const key = resolve(path);
    // Two callers asking for the same file share one read.
    let pending = this.hashing.get(key);
    if (!pending) {
      pending = this.compute(key).finally(() => this.hashing.delete(key));
      this.hashing.set(key, pending);
    }
    return pending;
  }

  private async compute(path: string): Promise<HashResult> {
    const entries = await this.load();
    const before = await stat(path);
    const entry = entries.get(path);
    if (entry && entry.size === before.size && entry.mtimeMs === before.mtimeMs)
      return { sha256: entry.sha256, cached: true };
    const sha256 = await sha256OfFile(path);
    const after = await stat(path);
    // A file that changed while it was read gets no cache entry: the hash may mix both versions.
    if (after.size === before.size && after.mtimeMs === before.mtimeMs) {
      entries.set(path, { size: after.size, mtimeMs: after.mtimeMs, sha256 });
      await this.save();
    }
    return { sha256, cached: false };
  }

  private async load(): Promise<Map<string, CacheEntry>> {
    if (this.entries) return this.entries;
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(this.cacheFile, "utf8"));
    } catch {
      // No cache yet, or an unreadable one: start empty, it is only a cache.
      parsed = undefined;
    }
    const entries = new Map<string, CacheEntry>();
    if (isCacheFile(parsed))
      for (const [path, entry] of Object.entries(parsed.files)) if (isEntry(entry)) entries.set(path, entry);
    this.entries ??= entries;
    return this.entries;
  }

  private save(): Promise<void> {
    // Saves run one after another; a failed one does not stop the next.
    this.saving = this.saving
      .catch(() => undefined)
      .then(async () => {
        const files = Object.fromEntries(this.entries ?? []);
        const temporary = `${this.cacheFile}.${process.pid}.tmp`;
        await mkdir(dirname(this.cacheFile), { recursive: true });
        await writeFile(temporary, `${JSON.stringify({ version: CACHE_VERSION, files }, null, 2)}\n`);
        await rename(temporary, this.cacheFile);
      });
    return this.saving;
  }
}

function isCacheFile(value: unknown): value is { version: number; files: Record<string, unknown> } {
  if (typeof value !== "object" || value === null) return false;
  const record = value as Record<string, unknown>;
  return record.version === CACHE_VERSION && typeof record.files === "object" && record.files !== null;
}

function isEntry(value: unknown): value is CacheEntry {
  if (typeof value !== "object" || value === null) return false;
  const entry = value as Record<string, unknown>;
  return typeof entry.size === "number" && typeof entry.mtimeMs === "number" && typeof entry.sha256 === "string";
}
