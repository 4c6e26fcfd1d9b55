/** The configuration: defaults, file < environment < flags, and refusals that name the path and the reason. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, loadConfig, parseConfig, resolveAddresses } from "../src/config.js";

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), "indexer-config-")), "indexer.yaml");
  writeFileSync(path, text);
  return path;
}

function problems(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.context.problems as string[];
  }
  assert.fail("the config was accepted");
}

void describe("config", () => {
  void test("defaults: a local node, PGlite in .indexer-data, port 42069, 64 blocks of finality, a 30-day window", () => {
    const config = loadConfig({}, {});
    assert.deepEqual(config.chain.rpcUrls, ["http://127.0.0.1:8545"]);
    assert.equal(config.database.url, undefined);
    assert.equal(config.database.dataDir, ".indexer-data");
    assert.equal(config.api.port, 42_069);
    assert.equal(config.api.dev, false);
    assert.equal(config.chain.finalityDepth, 64);
    assert.equal(config.ranking.windowSeconds, 30 * 86_400);
    assert.equal(config.ranking.weights.price, 0.2);
    assert.equal(config.sync.onChainReplaced, "reindex");
  });

  void test("a YAML file, overridden by the environment, overridden by flags", () => {
    const path = file(`
chain:
  rpcUrls: [http://a.example:8545, http://b.example:8545]
  finalityDepth: 12
database:
  dataDir: /var/lib/indexer
api:
  port: 9000
ranking:
  weights: { price: 0.5 }
`);
    const fromFile = loadConfig({ config: path }, {});
    assert.deepEqual(fromFile.chain.rpcUrls, ["http://a.example:8545", "http://b.example:8545"]);
    assert.equal(fromFile.chain.finalityDepth, 12);
    assert.equal(fromFile.ranking.weights.price, 0.5);
    assert.equal(fromFile.ranking.weights.throughput, 0.15, "unset weights keep their defaults");
    const fromEnv = loadConfig(
      { config: path },
      { INDEXER_PORT: "9100", DATABASE_URL: "postgresql://db/indexer", INDEXER_RPC_URLS: "http://c.example" },
    );
    assert.equal(fromEnv.api.port, 9100);
    assert.equal(fromEnv.database.url, "postgresql://db/indexer");
    assert.deepEqual(fromEnv.chain.rpcUrls, ["http://c.example"]);
    const fromFlags = loadConfig(
      { config: path, port: "9200", rpc: ["http://d.example"], dev: true },
      { INDEXER_PORT: "9100" },
    );
    assert.equal(fromFlags.api.port, 9200);
    assert.deepEqual(fromFlags.chain.rpcUrls, ["http://d.example"]);
    assert.equal(fromFlags.api.dev, true);
  });

  void test("every mistake at once, each with its path", () => {
    const found = problems(() =>
      parseConfig({
        chain: { rpcUrls: ["ftp://x"], wsUrl: "http://not-a-socket", finalityDepth: -1 },
        api: { port: 70_000, hots: "x" },
        ranking: { weights: { price: -1 } },
        database: { schema: "Drop Table" },
      }),
    );
    const text = found.join("\n");
    assert.match(text, /chain\.rpcUrls\.0: not a URL with http: or https:/);
    assert.match(text, /chain\.wsUrl: not a URL with ws: or wss:/);
    assert.match(text, /chain\.finalityDepth: /);
    assert.match(text, /api\.port: /);
    assert.match(text, /api: .*hots/);
    assert.match(text, /ranking\.weights\.price: /);
    assert.match(text, /database\.schema: lowercase letters, digits and _/);
  });

  void test("all-zero weights, a bad number in the environment, unreadable or invalid files", () => {
    const zero = Object.fromEntries(
      [
        "throughput",
        "latency",
        "consistency",
        "success",
        "volume",
        "duration",
        "consumers",
        "stake",
        "price",
        "availability",
      ].map((k) => [k, 0]),
    );
    assert.match(
      problems(() => parseConfig({ chain: { rpcUrls: ["http://x"] }, ranking: { weights: zero } })).join(),
      /at least one weight must be positive/,
    );
    assert.match(problems(() => loadConfig({}, { INDEXER_PORT: "eighty" })).join(), /api\.port/);
    assert.throws(
      () => loadConfig({ config: "/nonexistent/indexer.yaml" }, {}),
      /cannot read config file \/nonexistent\/indexer\.yaml/,
    );
    assert.throws(() => loadConfig({ config: file("chain: [unclosed") }, {}), /is not valid YAML/);
    assert.throws(() => loadConfig({ config: file("- a list") }, {}), /must hold a mapping/);
  });

  void test("addresses: explicit, from a deployment file, or a clear error naming the file to create", () => {
    const addresses = {
      token: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
      staking: "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512",
      providerRegistry: "0x0dcd1bf9a1b36ce34237eeafef220932846bcd82",
      modelRegistry: "0xa51c1fc2f0d1a1b8494ed1fe312d7c3a78ed91c0",
      marketplace: "0x9a676e781a523b5d0c0e43731313a708cb607508",
      sessionRouter: "0x0b306bf915c4d645ff596e518faf3f9669b97016",
      escrow: "0x524f04724632eed237cba3c37272e018b3a7967e",
    };
    const explicit = resolveAddresses(parseConfig({ chain: { rpcUrls: ["http://x"] }, contracts: { addresses } }), 1);
    assert.equal(explicit.sessionRouter, "0x0B306BF915C4d645ff596e518fAf3F9669b97016");
    const deployment = file(
      JSON.stringify(
        Object.fromEntries(
          Object.entries(addresses).map(([k, v]) => [
            `LocalMarket#${k === "token" ? "MarketToken" : k[0]!.toUpperCase() + k.slice(1)}`,
            v,
          ]),
        ),
      ),
    );
    assert.equal(
      resolveAddresses(parseConfig({ chain: { rpcUrls: ["http://x"] }, contracts: { deploymentFile: deployment } }), 1)
        .escrow,
      "0x524F04724632eED237cbA3c37272e018b3A7967e",
    );
    assert.throws(
      () => resolveAddresses(parseConfig({ chain: { rpcUrls: ["http://x"] } }), 999_999),
      /no deployment for chain 999999 at .*chain-999999\/deployed_addresses\.json/,
    );
  });
});
