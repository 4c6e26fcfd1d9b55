/** The config: every mistake named by its path, secrets refused, defaults, the example file. */
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../src/config/errors.js";
import { loadConfig, parseConfig } from "../src/config/load.js";

const EXAMPLE = fileURLToPath(new URL("../agent.example.yaml", import.meta.url));
const MODEL_ID = `0x${"11".repeat(32)}`;

function minimal(overrides: Record<string, unknown> = {}) {
  return {
    chain: { rpcUrls: ["http://127.0.0.1:8545"] },
    models: [{ name: "tiny", file: "tiny.gguf", id: MODEL_ID }],
    ...overrides,
  };
}

function issuesOf(raw: unknown): Map<string, string> {
  try {
    parseConfig(raw, "/base");
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return new Map(error.issues.map((issue) => [issue.path, issue.message]));
  }
  assert.fail("the config was accepted");
}

void describe("config", () => {
  void it("takes a minimal config and fills the defaults, paths resolved against the base dir", () => {
    const config = parseConfig(minimal(), "/base");
    assert.equal(config.models[0]!.file, "/base/tiny.gguf");
    assert.equal(config.dataDir, "/base/agent-data");
    assert.equal(config.chain.confirmations, 1);
    assert.equal(config.server.port, 8080);
    assert.equal(config.sessions.creditLimit, 10n ** 16n);
    assert.equal(config.models[0]!.gpu, "auto");
    assert.equal(config.keys.providerKeyEnv, "PROVIDER_PRIVATE_KEY");
  });

  void it("names every mistake by its path, all at once", () => {
    const issues = issuesOf({
      chain: { rpcUrls: ["ftp://nowhere"], confirmations: -1 },
      server: { port: 70_000, hots: "x" },
      models: [
        {
          name: "tiny",
          file: "a.gguf",
          uri: "https://example.com/a.gguf",
          id: "0x12",
          bid: { pricePerSecond: "1.5" },
          gpu: "maybe",
        },
      ],
      sessions: { creditLimit: -5 },
    });
    assert.match(issues.get("chain.rpcUrls[0]") ?? "", /http|ws/);
    assert.ok(issues.has("chain.confirmations"));
    assert.ok(issues.has("server.port"));
    assert.match(issues.get("server.hots") ?? "", /unknown field/);
    assert.match(issues.get("models[0].id") ?? "", /32 bytes/);
    assert.match(issues.get("models[0].bid.pricePerSecond") ?? "", /digits/);
    assert.ok(issues.has("models[0].gpu"));
    assert.ok(issues.has("sessions.creditLimit"));
  });

  void it("checks the rules across fields: one weight source, an id or a registration, unique names", () => {
    const issues = issuesOf(
      minimal({
        models: [
          { name: "a", file: "a.gguf", uri: "https://example.com/a.gguf", id: MODEL_ID },
          { name: "a", file: "b.gguf" },
          { name: "up", upstream: "http://127.0.0.1:9000/v1", register: { royaltyBps: 0 } },
          { name: "c", file: "c.gguf", id: MODEL_ID, maxTokens: 4096, contextSize: 1024 },
        ],
      }),
    );
    assert.match(issues.get("models[0]") ?? "", /exactly one of file, uri or upstream/);
    assert.match(issues.get("models[1].name") ?? "", /same name as models\[0\]\.name/);
    assert.match(issues.get("models[1].id") ?? "", /register/);
    assert.match(issues.get("models[2].sha256") ?? "", /sha256/);
    assert.match(issues.get("models[3].id") ?? "", /same id/);
    assert.match(issues.get("models[3].maxTokens") ?? "", /below contextSize/);
  });

  void it("refuses a key in the config file without echoing it", () => {
    const secret = `0x${"ab".repeat(32)}`;
    let error: unknown;
    try {
      parseConfig({ ...minimal(), privateKey: secret }, "/base");
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof ConfigError);
    assert.match(error.message, /privateKey: secrets are never read from the config file/);
    assert.ok(!error.message.includes(secret));
  });

  void it("reads YAML: big amounts keep their digits, an empty section takes its defaults", async () => {
    const dir = await mkdtemp(join(tmpdir(), "agent-config-"));
    const path = join(dir, "agent.yaml");
    await writeFile(
      path,
      [
        "chain:",
        "  rpcUrls: [http://127.0.0.1:8545]",
        "deployment:",
        "sessions:",
        "  maxDeposit: 123456789012345678901234567890",
        "models:",
        `  - { name: tiny, file: ./m/tiny.gguf, id: "${MODEL_ID}" }`,
      ].join("\n"),
    );
    const config = loadConfig(path);
    assert.equal(config.sessions.maxDeposit, 123456789012345678901234567890n);
    assert.equal(config.models[0]!.file, join(dir, "m/tiny.gguf"));
    assert.deepEqual(config.deployment, {});
  });

  void it("reports YAML syntax errors and a missing file as config errors", async () => {
    const dir = await mkdtemp(join(tmpdir(), "agent-config-"));
    const path = join(dir, "broken.yaml");
    await writeFile(path, "chain: [unclosed\n");
    assert.throws(
      () => loadConfig(path),
      (error: unknown) => error instanceof ConfigError && /\(yaml\)/.test(error.message),
    );
    assert.throws(
      () => loadConfig(join(dir, "missing.yaml")),
      (error: unknown) => error instanceof ConfigError && /cannot read/.test(error.message),
    );
  });

  void it("accepts the documented example", () => {
    const config = loadConfig(EXAMPLE);
    assert.equal(config.models[0]!.adapters[0]!.name, "tiny-lora");
    assert.equal(config.models[0]!.bid?.pricePerOutputToken, 4_000_000_000n);
  });
});
