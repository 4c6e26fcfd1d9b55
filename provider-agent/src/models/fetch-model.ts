/**
 * Fetches a model file from an http(s) URI into a folder: resumable (a `.partial` file continued with
 * an HTTP Range request), renamed into place only once complete, with clear errors for a missing file,
 * a network failure or a size mismatch. The caller then checks the file's sha256 against the chain.
 */
import { createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { once } from "node:events";

export interface DownloadProgress {
  uri: string;
  path: string;
  /** Bytes on disk so far, including what an earlier attempt left. */
  receivedBytes: number;
  /** From Content-Length / Content-Range, or `expectedBytes`; undefined when the server does not say. */
  totalBytes?: number;
  /** Bytes an earlier, interrupted attempt had already fetched. */
  resumedFrom: number;
}

export interface FetchModelOptions {
  uri: string;
  /** Folder the file goes into (created if needed). */
  directory: string;
  /** Default: the URI's last path segment. */
  fileName?: string;
  /** When known (e.g. from the model's metadata): a file of another size is refused. */
  expectedBytes?: number;
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
}

export interface FetchedModel {
  path: string;
  bytes: number;
  /** False when the file was already there. */
  downloaded: boolean;
  /** Bytes reused from an interrupted download. */
  resumedFrom: number;
}

export type DownloadFailure = "not_found" | "http_error" | "network" | "size_mismatch" | "bad_uri";

export class ModelDownloadError extends Error {
  constructor(
    readonly uri: string,
    readonly kind: DownloadFailure,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`cannot fetch model ${uri}: ${detail}`, options);
    this.name = "ModelDownloadError";
  }
}

const PROGRESS_EVERY_BYTES = 1 << 20;

export async function fetchModel(options: FetchModelOptions): Promise<FetchedModel> {
  const { uri, expectedBytes } = options;
  const url = parseUri(uri);
  const fileName = options.fileName ?? decodeURIComponent(basename(url.pathname));
  if (!fileName || fileName === "/" || fileName.includes("/") || fileName.startsWith(".")) {
    throw new ModelDownloadError(uri, "bad_uri", "no file name in the URI: pass fileName");
  }
  await mkdir(options.directory, { recursive: true });
  const path = join(options.directory, fileName);
  const partialPath = `${path}.partial`;

  const existing = await sizeOf(path);
  if (existing !== undefined) {
    if (expectedBytes !== undefined && existing !== expectedBytes) {
      throw new ModelDownloadError(
        uri,
        "size_mismatch",
        `${path} exists with ${existing} bytes, expected ${expectedBytes}`,
      );
    }
    return { path, bytes: existing, downloaded: false, resumedFrom: 0 };
  }

  let offset = (await sizeOf(partialPath)) ?? 0;
  const response = await request(uri, offset, options.signal);
  let totalBytes: number | undefined;
  if (response.status === 206) {
    totalBytes = contentRangeTotal(response.headers.get("content-range"));
  } else if (response.status === 416) {
    // The range starts at or past the end: the partial file may already be whole.
    await response.body?.cancel();
    const total = contentRangeTotal(response.headers.get("content-range"));
    if (total !== undefined && total === offset) return finish(uri, partialPath, path, offset, expectedBytes, offset);
    await rm(partialPath, { force: true });
    return fetchModel(options);
  } else {
    // 200: the server ignored the Range header (or there was none): start over.
    offset = 0;
    const length = Number(response.headers.get("content-length") ?? Number.NaN);
    totalBytes = Number.isFinite(length) ? length : undefined;
  }
  totalBytes ??= expectedBytes;
  if (expectedBytes !== undefined && totalBytes !== undefined && totalBytes !== expectedBytes) {
    await response.body?.cancel();
    throw new ModelDownloadError(
      uri,
      "size_mismatch",
      `the server offers ${totalBytes} bytes, expected ${expectedBytes}`,
    );
  }

  const resumedFrom = offset;
  let received = offset;
  let reportedAt = -Infinity;
  const report = (force: boolean): void => {
    if (!options.onProgress || (!force && received - reportedAt < PROGRESS_EVERY_BYTES)) return;
    reportedAt = received;
    options.onProgress({ uri, path, receivedBytes: received, totalBytes, resumedFrom });
  };
  report(true);
  const file = createWriteStream(partialPath, { flags: offset > 0 ? "a" : "w" });
  const fileError = once(file, "error").then(([error]) => Promise.reject(error as Error));
  fileError.catch(() => undefined);
  try {
    if (response.body) {
      // Node's types leave a web stream's chunks untyped; fetch's body yields bytes.
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        if (!file.write(chunk)) await Promise.race([once(file, "drain"), fileError]);
        received += chunk.byteLength;
        report(false);
      }
    }
  } catch (error) {
    // The caller's own abort is not a failure to report as one; the partial file stays for a resume.
    if (options.signal?.aborted) throw error;
    throw new ModelDownloadError(
      uri,
      "network",
      `the download broke off at ${received}${totalBytes === undefined ? "" : ` of ${totalBytes}`} bytes (${describe(error)}); run again to resume`,
      { cause: error },
    );
  } finally {
    file.end();
    await Promise.race([once(file, "close"), fileError]);
  }
  report(true);
  return finish(uri, partialPath, path, received, totalBytes, resumedFrom);
}

async function finish(
  uri: string,
  partialPath: string,
  path: string,
  received: number,
  totalBytes: number | undefined,
  resumedFrom: number,
): Promise<FetchedModel> {
  if (totalBytes !== undefined && received !== totalBytes) {
    if (received > totalBytes) await rm(partialPath, { force: true });
    throw new ModelDownloadError(
      uri,
      received > totalBytes ? "size_mismatch" : "network",
      `got ${received} bytes, expected ${totalBytes}${received < totalBytes ? "; run again to resume" : ""}`,
    );
  }
  await rename(partialPath, path);
  return { path, bytes: received, downloaded: true, resumedFrom };
}

async function request(uri: string, offset: number, signal: AbortSignal | undefined): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(uri, {
      headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
      signal,
      redirect: "follow",
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ModelDownloadError(uri, "network", `the server cannot be reached (${describe(error)})`, { cause: error });
  }
  if (response.status === 404) {
    await response.body?.cancel();
    throw new ModelDownloadError(uri, "not_found", "the server has no such file (HTTP 404)");
  }
  if (!response.ok && response.status !== 416) {
    await response.body?.cancel();
    throw new ModelDownloadError(
      uri,
      "http_error",
      `the server answered HTTP ${response.status} ${response.statusText}`,
    );
  }
  return response;
}

function parseUri(uri: string): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ModelDownloadError(uri, "bad_uri", "not a URI");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ModelDownloadError(uri, "bad_uri", `only http(s) URIs can be fetched, not ${url.protocol}`);
  }
  return url;
}

/** The total of a Content-Range such as `bytes 100-199/1000` (or `bytes *` then `/1000` for a 416). */
function contentRangeTotal(header: string | null): number | undefined {
  const total = /\/(\d+)\s*$/.exec(header ?? "")?.[1];
  return total === undefined ? undefined : Number(total);
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return `${error.message}${cause}`;
}
