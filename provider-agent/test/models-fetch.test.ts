/** Fetching model files over HTTP (a real local server, interrupted and resumed) and the sha256 cache. */
import assert from "node:assert/strict";
import { randomBytes, createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { type DownloadProgress, ModelDownloadError, fetchModel } from "../src/models/fetch-model.js";
import { ModelHashCache } from "../src/models/model-hash.js";
import { createProgressReporter } from "../src/models/progress-reporter.js";

const FILE = randomBytes(3 * 1024 * 1024 + 123);

interface ServerControl {
  /** Bytes sent before the server drops the connection, for the next response only. */
  cutAfter?: number;
  /** Ignore Range headers, as some servers do. */
  ignoreRange?: boolean;
  /** Claimed Content-Length for the next full response. */
  lie?: number;
  ranges: (string | undefined)[];
}

function serve(control: ServerControl) {
  return (request: IncomingMessage, response: ServerResponse): void => {
    if (request.url !== "/models/model.gguf") {
      response.writeHead(404).end("no such model");
      return;
    }
    control.ranges.push(request.headers.range);
    const range = control.ignoreRange ? undefined : /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    if (start >= FILE.length) {
      response.writeHead(416, { "content-range": `bytes */${FILE.length}` }).end();
      return;
    }
    const body = FILE.subarray(start);
    const headers: Record<string, string | number> = {
      "content-type": "application/octet-stream",
      "accept-ranges": "bytes",
    };
    if (range) headers["content-range"] = `bytes ${start}-${FILE.length - 1}/${FILE.length}`;
    headers["content-length"] = control.lie ?? body.length;
    control.lie = undefined;
    response.writeHead(range ? 206 : 200, headers);
    const cut = control.cutAfter;
    control.cutAfter = undefined;
    if (cut === undefined) {
      response.end(body);
      return;
    }
    response.write(body.subarray(0, cut), () => {
      // Drop the connection mid-body, like a network failure.
      setTimeout(() => request.socket.destroy(), 20);
    });
  };
}

void describe("fetchModel", () => {
  let directory: string;
  let server: Server;
  let baseUrl: string;
  const control: ServerControl = { ranges: [] };

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "agent-fetch-"));
    server = createServer(serve(control));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await rm(directory, { recursive: true, force: true });
  });

  void it("downloads a file whole, renames it into place and reports progress", async () => {
    const target = join(directory, "whole");
    const progress: DownloadProgress[] = [];
    const fetched = await fetchModel({
      uri: `${baseUrl}/models/model.gguf`,
      directory: target,
      onProgress: (p) => progress.push(p),
    });
    assert.deepEqual(fetched, {
      path: join(target, "model.gguf"),
      bytes: FILE.length,
      downloaded: true,
      resumedFrom: 0,
    });
    assert.ok((await readFile(fetched.path)).equals(FILE));
    await assert.rejects(stat(`${fetched.path}.partial`), { code: "ENOENT" });
    assert.equal(progress.at(-1)?.receivedBytes, FILE.length);
    assert.equal(progress.at(-1)?.totalBytes, FILE.length);
    // A second call finds the file and fetches nothing.
    const again = await fetchModel({ uri: `${baseUrl}/models/model.gguf`, directory: target });
    assert.equal(again.downloaded, false);
  });

  void it("resumes an interrupted download with a Range request", async () => {
    const target = join(directory, "resumed");
    const uri = `${baseUrl}/models/model.gguf`;
    control.cutAfter = 1024 * 1024;
    control.ranges.length = 0;
    await assert.rejects(fetchModel({ uri, directory: target }), (error: unknown) => {
      assert.ok(error instanceof ModelDownloadError);
      assert.equal(error.kind, "network");
      assert.match(error.message, /run again to resume/);
      return true;
    });
    const partial = (await stat(join(target, "model.gguf.partial"))).size;
    assert.ok(partial >= 1024 * 1024 && partial < FILE.length, `partial has ${partial} bytes`);

    const fetched = await fetchModel({ uri, directory: target });
    assert.equal(fetched.resumedFrom, partial);
    assert.deepEqual(control.ranges, [undefined, `bytes=${partial}-`]);
    assert.equal(
      createHash("sha256")
        .update(await readFile(fetched.path))
        .digest("hex"),
      createHash("sha256").update(FILE).digest("hex"),
    );
  });

  void it("starts over when the server ignores the Range header", async () => {
    const target = join(directory, "no-range");
    control.cutAfter = 4096;
    await assert.rejects(fetchModel({ uri: `${baseUrl}/models/model.gguf`, directory: target }), ModelDownloadError);
    control.ignoreRange = true;
    try {
      const fetched = await fetchModel({ uri: `${baseUrl}/models/model.gguf`, directory: target });
      assert.equal(fetched.resumedFrom, 0);
      assert.ok((await readFile(fetched.path)).equals(FILE));
    } finally {
      control.ignoreRange = false;
    }
  });

  void it("says clearly when the file is missing, the server unreachable or the size wrong", async () => {
    const target = join(directory, "errors");
    await assert.rejects(fetchModel({ uri: `${baseUrl}/models/nope.gguf`, directory: target }), (error: unknown) => {
      assert.ok(error instanceof ModelDownloadError);
      assert.equal(error.kind, "not_found");
      assert.match(error.message, /nope\.gguf.*404/);
      return true;
    });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await assert.rejects(
      fetchModel({ uri: `http://127.0.0.1:${port}/model.gguf`, directory: target }),
      (error: unknown) =>
        error instanceof ModelDownloadError && error.kind === "network" && /cannot be reached/.test(error.message),
    );
    await assert.rejects(
      fetchModel({ uri: `${baseUrl}/models/model.gguf`, directory: target, expectedBytes: FILE.length + 1 }),
      (error: unknown) => error instanceof ModelDownloadError && error.kind === "size_mismatch",
    );
    await assert.rejects(
      fetchModel({ uri: "ftp://example.com/model.gguf", directory: target }),
      (error: unknown) => error instanceof ModelDownloadError && error.kind === "bad_uri",
    );
  });

  void it("refuses a body shorter than the server announced, and finishes from the partial file after", async () => {
    const target = join(directory, "short");
    const uri = `${baseUrl}/models/model.gguf`;
    control.lie = FILE.length + 10;
    control.cutAfter = FILE.length;
    await assert.rejects(fetchModel({ uri, directory: target }), ModelDownloadError);
    const fetched = await fetchModel({ uri, directory: target });
    assert.ok(fetched.resumedFrom > 0);
    assert.ok((await readFile(fetched.path)).equals(FILE));
  });

  void it("completes a partial file that already has every byte (the server answers 416)", async () => {
    const target = join(directory, "complete-partial");
    await mkdir(target, { recursive: true });
    await writeFile(join(target, "model.gguf.partial"), FILE);
    const fetched = await fetchModel({ uri: `${baseUrl}/models/model.gguf`, directory: target });
    assert.deepEqual([fetched.downloaded, fetched.resumedFrom, fetched.bytes], [true, FILE.length, FILE.length]);
    assert.ok((await readFile(fetched.path)).equals(FILE));
  });
});

void describe("ModelHashCache", () => {
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "agent-hash-"));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  void it("hashes a file once, answers from the cache after, and re-hashes a changed file", async () => {
    const model = join(directory, "model.gguf");
    await writeFile(model, "weights v1");
    const cacheFile = join(directory, "state", "model-hashes.json");
    const cache = new ModelHashCache(cacheFile);
    const expected = createHash("sha256").update("weights v1").digest("hex");
    assert.deepEqual(await cache.sha256(model), { sha256: expected, cached: false });
    assert.deepEqual(await cache.sha256(model), { sha256: expected, cached: true });
    // A new process reads the cache file.
    assert.deepEqual(await new ModelHashCache(cacheFile).sha256(model), { sha256: expected, cached: true });

    await writeFile(model, "weights v2");
    const changed = await new ModelHashCache(cacheFile).sha256(model);
    assert.deepEqual(changed, { sha256: createHash("sha256").update("weights v2").digest("hex"), cached: false });

    // Same size, new mtime: re-hashed too.
    await writeFile(model, "weights v3");
    const later = new Date(Date.now() + 5000);
    await utimes(model, later, later);
    assert.equal((await new ModelHashCache(cacheFile).sha256(model)).cached, false);
  });

  void it("shrugs off a corrupt cache file", async () => {
    const model = join(directory, "other.gguf");
    await writeFile(model, "x");
    const cacheFile = join(directory, "broken.json");
    await writeFile(cacheFile, "{ not json");
    assert.equal((await new ModelHashCache(cacheFile).sha256(model)).cached, false);
    assert.equal((await new ModelHashCache(cacheFile).sha256(model)).cached, true);
  });
});

void describe("progress reporter", () => {
  void it("writes structured lines every few percent when not on a terminal", () => {
    const lines: { fields: Record<string, string | number>; message: string }[] = [];
    const reporter = createProgressReporter({
      label: "download",
      log: (fields, message) => lines.push({ fields, message }),
      logEveryPercent: 25,
    });
    for (let done = 0; done <= 100; done += 5) reporter.update({ done, total: 100 });
    reporter.done();
    assert.deepEqual(
      lines.map((line) => [line.fields.percent, line.message]),
      [
        [0, "progress"],
        [25, "progress"],
        [50, "progress"],
        [75, "progress"],
        [100, "progress"],
        [100, "done"],
      ],
    );
  });
});
