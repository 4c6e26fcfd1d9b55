/** Model and adapter files the engine cannot serve: each is refused with the path and the reason. */
import assert from "node:assert/strict";
import { copyFile, mkdtemp, open, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { EmbeddedEngine } from "../src/inference/embedded/embedded-engine.js";
import type { LoraAdapterConfig } from "../src/inference/embedded/engine-config.js";
import { ModelLoadError } from "../src/inference/embedded/model-file-check.js";
import { COMPUTE_SHAPE, writeLoraTestAdapter } from "../src/models/gguf/test-llama.js";
import { sharedLlama, testModels } from "./support/models.js";

void describe("bad model files", () => {
  let directory: string;
  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "agent-bad-models-"));
  });
  after(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  async function start(path: string, adapters: LoraAdapterConfig[] = []): Promise<EmbeddedEngine> {
    return EmbeddedEngine.start({
      models: [{ id: "0xbad", path, contextSize: 256, parallel: 1, threads: 1, gpu: "off", adapters }],
      llama: await sharedLlama(),
    });
  }

  async function refused(
    path: string,
    reason: RegExp,
    adapters: LoraAdapterConfig[] = [],
    namedPath = path,
  ): Promise<void> {
    await assert.rejects(start(path, adapters), (error: unknown) => {
      assert.ok(error instanceof ModelLoadError, String(error));
      assert.equal(error.path, namedPath);
      assert.ok(error.message.includes(namedPath), error.message);
      assert.match(error.reason, reason);
      return true;
    });
  }

  void it("refuses a missing file", async () => {
    await refused(join(directory, "missing.gguf"), /does not exist/);
  });

  void it("refuses an empty file", async () => {
    const path = join(directory, "empty.gguf");
    await writeFile(path, "");
    await refused(path, /empty/);
  });

  void it("refuses a file that is not GGUF", async () => {
    const path = join(directory, "notes.gguf");
    await writeFile(path, "these are not the weights you are looking for\n".repeat(10));
    await refused(path, /not a GGUF file/);
  });

  void it("refuses a truncated file", async () => {
    const path = join(directory, "truncated.gguf");
    await copyFile((await testModels()).model.path, path);
    const size = (await readFile(path)).length;
    await truncate(path, Math.floor(size * 0.6));
    await refused(path, /truncated/);
  });

  void it("refuses a file whose header is cut inside the metadata", async () => {
    const path = join(directory, "cut-header.gguf");
    await copyFile((await testModels()).model.path, path);
    await truncate(path, 200);
    await refused(path, /truncated/);
  });

  void it("refuses a file with a corrupt header", async () => {
    const path = join(directory, "corrupt.gguf");
    const bytes = await readFile((await testModels()).model.path);
    // Keep magic and version, scramble the counts and the first keys.
    for (let at = 8; at < 120; at++) bytes[at] = (at * 151) & 0xff;
    await writeFile(path, bytes);
    await refused(path, /corrupt|truncated/);
  });

  void it("refuses a file with an unsupported GGUF version", async () => {
    const path = join(directory, "version.gguf");
    await copyFile((await testModels()).model.path, path);
    const handle = await open(path, "r+");
    await handle.write(Buffer.from([99, 0, 0, 0]), 0, 4, 4);
    await handle.close();
    await refused(path, /unsupported GGUF version 99/);
  });

  void it("refuses an adapter listed as a model, and a model listed as an adapter", async () => {
    const models = await testModels();
    await refused(models.adapter.path, /LoRA adapter, not a model/);
    await refused(models.model.path, /not a LoRA adapter/, [{ id: "0xa", path: models.model.path }]);
  });

  void it("refuses an adapter made for another model", async () => {
    const models = await testModels();
    const path = join(directory, "other-lora.gguf");
    await writeLoraTestAdapter(path, { shape: COMPUTE_SHAPE, rank: 2 });
    await refused(models.model.path, /adapter cannot be applied/, [{ id: "0xa", path }], path);
  });
});
