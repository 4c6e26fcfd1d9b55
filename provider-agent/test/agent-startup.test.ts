/**
 * Start-up on a real chain: /health is 503 until ready; the on-chain setup is written once and a
 * restart changes nothing (no second registration, no second bid fee); a price change updates the
 * bid without a fee; operator-only mode verifies and says what differs; a model file whose sha256
 * does not match the chain, or a stake below the minimum, stops the start with a clear error.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { getAddress } from "viem";
import { marketplaceAbi, providerRegistryAbi } from "../../protocol/index.js";
import { startAgent } from "../src/agent.js";
import { ProvisioningError } from "../src/chain/provisioning.js";
import { parseConfig } from "../src/config/load.js";
import { keysFromAccounts } from "../src/keys/load.js";
import { Logger, memoryDestination } from "../src/log/logger.js";
import { PRICES, type TestAgent, rawTestConfig, startTestAgent, tinyIds } from "./support/agent.js";
import { Teardown, type TestMarket, bidPostedEvents, startTestMarket, tokenBalance } from "./support/market.js";
import { TestConsumer } from "./support/consumer.js";
import { MODEL_ID, sharedLlama, startTinyEngine, testModels } from "./support/models.js";
import { startOpenAiStandIn } from "./support/openai-standin.js";

const ENDPOINT = "http://agent.example:8080";

const teardown = new Teardown();
let market: TestMarket;
let ids: Awaited<ReturnType<typeof tinyIds>>;
let raw: Record<string, unknown>;
const logs: (() => string)[] = [];

before(async () => {
  market = await startTestMarket();
  teardown.add(() => market.stop());
  ids = await tinyIds(market);
  raw = await rawTestConfig(market, {
    server: { host: "127.0.0.1", port: 0, publicEndpoint: ENDPOINT, shutdownGraceSeconds: 2 },
  });
});

after(() => teardown.run());

async function start(
  overrides: Record<string, unknown> = {},
  keys = keysFromAccounts({ provider: market.accounts.provider, operator: market.accounts.operator }),
): Promise<TestAgent> {
  // A data dir per start: the on-chain setup is what these tests are about, and a failed test's
  // agent (stopped at teardown) then holds no lock the next one needs.
  const dataDir = await mkdtemp(join(tmpdir(), "agent-startup-"));
  const agent = await startTestAgent(market, { config: parseConfig({ ...raw, dataDir, ...overrides }, "/"), keys });
  logs.push(agent.logs);
  // Stopped by the test; also here, so a failed assertion does not leave the data dir locked.
  teardown.add(() => agent.stop());
  return agent;
}

/** Starts an agent expected to fail; returns the error and its log. */
async function failingStart(
  overrides: Record<string, unknown>,
  keys = keysFromAccounts({ provider: market.accounts.provider, operator: market.accounts.operator }),
) {
  const output = memoryDestination();
  const agent = await startAgent({
    config: parseConfig({ ...raw, dataDir: await mkdtemp(join(tmpdir(), "agent-startup-")), ...overrides }, "/"),
    keys,
    logger: Logger.create({ destination: output.write }),
    llama: await sharedLlama(),
    maxThreads: 1,
  });
  logs.push(output.text);
  const error = await agent.ready.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  const health = await fetch(`${agent.url}/health`);
  const body = (await health.json()) as { status: string; step: string };
  await agent.stop({ graceMs: 0 });
  return { error, health: { status: health.status, body }, log: output.text() };
}

function providerNonce() {
  return market.publicClient.getTransactionCount({ address: market.accounts.provider.address });
}

void describe("start-up", () => {
  void it("answers /health with 503 while starting and 200 once ready, having set everything up on chain", async () => {
    const output = memoryDestination();
    const agent = await startAgent({
      config: parseConfig(raw, "/"),
      keys: keysFromAccounts({ provider: market.accounts.provider, operator: market.accounts.operator }),
      logger: Logger.create({ destination: output.write }),
      llama: await sharedLlama(),
      maxThreads: 1,
    });
    logs.push(output.text);
    teardown.add(() => agent.stop());
    const starting = await fetch(`${agent.url}/health`);
    assert.equal(starting.status, 503);
    assert.equal(((await starting.json()) as { status: string }).status, "starting");
    const notYet = await fetch(`${agent.url}/v1/models`);
    assert.equal(notYet.status, 503);
    assert.equal(((await notYet.json()) as { error: { code: string } }).error.code, "not_ready");

    const parts = await agent.ready;
    assert.equal((await fetch(`${agent.url}/health`)).status, 200);
    assert.deepEqual(parts.provisioning.actions, [
      "approve staking",
      "stake 100000000000000000000",
      "register provider",
      "register model tiny",
      "register model tiny-lora",
      "approve bid fee",
      "post bid tiny",
      "approve bid fee",
      "post bid tiny-lora",
    ]);
    const provider = await market.publicClient.readContract({
      address: market.addresses.providerRegistry,
      abi: providerRegistryAbi,
      functionName: "getProvider",
      args: [market.accounts.provider.address],
    });
    assert.equal(provider.endpoint, ENDPOINT);
    assert.equal(provider.operator, market.accounts.operator.address);
    assert.equal((await bidPostedEvents(market)).length, 2);
    await agent.stop();
  });

  void it("changes nothing when started again: no second registration, no second bid fee", async () => {
    const nonce = await providerNonce();
    const balance = await tokenBalance(market, market.accounts.provider.address);
    const agent = await start();
    assert.deepEqual(agent.parts.provisioning.actions, []);
    assert.equal(await providerNonce(), nonce);
    assert.equal(await tokenBalance(market, market.accounts.provider.address), balance);
    assert.equal((await bidPostedEvents(market)).length, 2);
    await agent.stop();
  });

  void it("updates the provider's metadata URI when it changes (it lives in events only)", async () => {
    const provider = raw.provider as Record<string, unknown>;
    for (const metadataURI of ["ipfs://new-metadata", provider.metadataURI]) {
      const agent = await start({ provider: { ...provider, metadataURI } });
      assert.deepEqual(agent.parts.provisioning.actions, ["update provider metadata"]);
      await agent.stop();
    }
  });

  void it("updates a bid whose prices changed, without a fee", async () => {
    const balance = await tokenBalance(market, market.accounts.provider.address);
    const models = raw.models as Record<string, unknown>[];
    const changed = [{ ...models[0], bid: { ...(models[0]!.bid as object), pricePerOutputToken: "5000000000" } }];
    const agent = await start({ models: changed });
    assert.deepEqual(agent.parts.provisioning.actions, ["update bid tiny"]);
    assert.equal(await tokenBalance(market, market.accounts.provider.address), balance);
    const bid = await market.publicClient.readContract({
      address: market.addresses.marketplace,
      abi: marketplaceAbi,
      functionName: "getBid",
      args: [ids.bidId],
    });
    assert.equal(bid.pricePerOutputToken, 5_000_000_000n);
    assert.equal((await bidPostedEvents(market)).length, 2);
    await agent.stop();
  });

  void it("with the operator key only, writes nothing and says precisely what differs", async () => {
    const nonce = await providerNonce();
    // The chain has 5e9 per output token now (the previous test); this config says 4e9.
    const agent = await start(
      {},
      keysFromAccounts({ operator: market.accounts.operator, providerAddress: market.accounts.provider.address }),
    );
    assert.deepEqual(agent.parts.provisioning.actions, []);
    assert.deepEqual(agent.parts.provisioning.differences, [
      {
        subject: "bid on tiny (models[0].bid) prices",
        onChain: `${PRICES.pricePerSecond}/s, ${PRICES.pricePerInputToken}/input token, 5000000000/output token`,
        wanted: `${PRICES.pricePerSecond}/s, ${PRICES.pricePerInputToken}/input token, ${PRICES.pricePerOutputToken}/output token`,
        fatal: false,
      },
    ]);
    assert.match(agent.logs(), /on-chain setup differs from the config/);
    assert.equal(await providerNonce(), nonce);
    await agent.stop();
  });

  void it("refuses to start, operator-only, when the chain names another operator", async () => {
    const { error, health } = await failingStart(
      {},
      keysFromAccounts({ operator: market.accounts.stranger, providerAddress: market.accounts.provider.address }),
    );
    assert.ok(error instanceof ProvisioningError);
    assert.match(
      error.message,
      new RegExp(
        `provider\\.operator: on chain ${market.accounts.operator.address}, configured ${market.accounts.stranger.address}`,
      ),
    );
    assert.equal(health.status, 503);
    assert.equal(health.body.status, "failed");
  });

  void it("refuses a model file whose sha256 does not match the chain", async () => {
    const models = await testModels();
    const { error, health, log } = await failingStart({
      models: [
        {
          name: "impostor",
          id: ids.modelId,
          file: models.adapter.path,
          contextSize: 1024,
          threads: 1,
          gpu: "off",
          maxTokens: 256,
        },
      ],
    });
    assert.ok(error instanceof Error);
    assert.equal(error.name, "ModelHashMismatchError");
    assert.ok(error.message.includes(models.adapter.path));
    assert.ok(error.message.includes(`0x${models.adapter.sha256}`));
    assert.ok(error.message.includes(`0x${models.model.sha256}`));
    assert.equal(health.status, 503);
    assert.match(health.body.step, /ModelRegistry records/);
    assert.match(log, /start-up failed/);
  });

  void it("stops below the minimum stake and says how much is missing", async () => {
    const { error } = await failingStart(
      { provider: { metadataURI: "", topUpStake: false } },
      keysFromAccounts({ provider: market.accounts.provider2 }),
    );
    assert.ok(error instanceof Error);
    assert.equal(error.name, "StakeTooLowError");
    assert.match(error.message, new RegExp(`${getAddress(market.accounts.provider2.address)} has 0 staked`));
    assert.match(error.message, /topUpStake/);
  });

  void it("serves a model from an upstream OpenAI-compatible server", async () => {
    const engine = await startTinyEngine();
    teardown.add(() => engine.close());
    const standIn = await startOpenAiStandIn(engine);
    teardown.add(() => standIn.close());
    const agent = await start({
      models: [
        {
          name: "remote",
          upstream: `${standIn.url}/v1`,
          upstreamModel: MODEL_ID,
          id: ids.modelId,
          contextSize: 512,
          parallel: 2,
          maxTokens: 64,
        },
      ],
    });
    const consumer = new TestConsumer(market, market.accounts.user);
    const { sessionId } = await consumer.open(agent.url, ids.bidId, 10n ** 20n);
    const client = await consumer.openai(agent.url, sessionId);
    const answer = await client.chat.completions.create({
      model: ids.modelId,
      messages: [{ role: "user", content: "Hello" }],
      max_completion_tokens: 6,
      temperature: 0,
    });
    assert.equal(answer.usage?.completion_tokens, 6);
    assert.ok(standIn.received.length > 0);
    await agent.stop();
  });

  void it("fetches a model given by URI, checks it against the chain, and limits requests per IP", async () => {
    const models = await testModels();
    const file = await readFile(models.model.path);
    const server = createServer((request, response) => {
      if (request.url !== "/tiny.gguf") return response.writeHead(404).end();
      response.writeHead(200, { "content-length": file.length }).end(file);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    teardown.add(() => new Promise((resolve) => server.close(resolve)));
    const { port } = server.address() as AddressInfo;
    const agent = await start({
      server: { host: "127.0.0.1", port: 0, publicEndpoint: ENDPOINT, rateLimitPerIp: 5 },
      models: [
        {
          name: "downloaded",
          uri: `http://127.0.0.1:${port}/tiny.gguf`,
          id: ids.modelId,
          contextSize: 512,
          threads: 1,
          gpu: "off",
          maxTokens: 64,
        },
      ],
    });
    assert.match(agent.logs(), /"msg":"model file ready"/);
    assert.equal(agent.parts.catalog[0]?.sha256, `0x${models.model.sha256}`);
    const statuses: number[] = [];
    for (let index = 0; index < 6; index++) statuses.push((await fetch(`${agent.url}/v1/models`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    // /health and /metrics are not limited.
    assert.equal((await fetch(`${agent.url}/health`)).status, 200);
    await agent.stop();
  });

  void it("never logs a key", () => {
    const keys = [
      market.accounts.provider,
      market.accounts.operator,
      market.accounts.provider2,
      market.accounts.stranger,
    ].map((account) => market.privateKeyOf(account).slice(2).toLowerCase());
    const all = logs
      .map((log) => log())
      .join("\n")
      .toLowerCase();
    assert.ok(all.length > 1_000);
    for (const key of keys) assert.ok(!all.includes(key));
  });
});
