/**
 * Every market event, from real transactions on a real `hardhat node`, lands in the right rows
 * with the right values — checked through GraphQL over HTTP against what the chain itself says
 * (event arguments decoded here, escrow balances read from the contract). Then the list queries:
 * each filter, each order and direction, and page boundaries.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type Hex, decodeEventLog } from "viem";
import {
  marketplaceAbi,
  modelRegistryAbi,
  providerRegistryAbi,
  sessionRouterAbi,
  stakingAbi,
} from "../../protocol/index.js";
import { type OpenedSession, E18, MarketDriver } from "./helpers/market.js";
import { backends } from "./helpers/databases.js";
import { type TestIndexer, startTestIndexer } from "./helpers/indexer.js";
import { graphql, query } from "./helpers/graphql.js";

const PRICES_A = { perSecond: 10n ** 12n, perInputToken: 10n ** 9n, perOutputToken: 4n * 10n ** 9n };
const PRICES_B = { perSecond: 3n * 10n ** 12n, perInputToken: 0n, perOutputToken: 10n ** 10n };
const STATS = { inputTokens: 1_200n, outputTokens: 800n, ttftMsAvg: 150, tpsX1000Avg: 42_500 };

interface History {
  modelId: Hex;
  adapterId: Hex;
  bidA: Hex;
  bidB: Hex;
  bidC: Hex;
  /** s1: topped up, settled by the operator with a receipt. s2: user close, challenged. s3: user close, finalized. s4: no receipt. s5: open. */
  sessions: OpenedSession[];
  /** SessionSettled arguments as the chain emitted them, by session id. */
  settled: Map<
    Hex,
    {
      cost: bigint;
      providerAmount: bigint;
      royaltyAmount: bigint;
      feeAmount: bigint;
      refund: bigint;
      elapsedSeconds: bigint;
      closedBy: string;
      challenged: boolean;
      outputTokens: bigint;
    }
  >;
  newTreasury: string;
}

/** Every event type the indexer handles (RefundCredited needs a token that refuses transfers: see the handler test). */
async function scriptHistory(market: MarketDriver): Promise<History> {
  const [governance, providerA, operatorA, providerB, owner, user1, user2, providerC, treasury2] = market.accounts;
  const { addresses } = market;
  const settled: History["settled"] = new Map();
  const recordSettlement = (receipt: Awaited<ReturnType<MarketDriver["send"]>>) => {
    for (const log of receipt.logs) {
      if (log.address.toLowerCase() !== addresses.sessionRouter.toLowerCase()) continue;
      const event = decodeEventLog({ abi: sessionRouterAbi, data: log.data, topics: log.topics });
      if (event.eventName !== "SessionSettled") continue;
      const { settlement, receipt: usage, closedBy, challenged, sessionId } = event.args;
      settled.set(sessionId, { ...settlement, closedBy, challenged, outputTokens: usage.outputTokens });
    }
  };

  // Governance: every setter once (the constructors emitted the first values).
  await market.send(governance!, addresses.staking, stakingAbi, "setUnbondingPeriod", [0n]);
  await market.send(governance!, addresses.providerRegistry, providerRegistryAbi, "setProviderMinStake", [50n * E18]);
  await market.send(governance!, addresses.modelRegistry, modelRegistryAbi, "setModelMinStake", [5n * E18]);
  await market.send(governance!, addresses.modelRegistry, modelRegistryAbi, "setMaxRoyaltyBps", [3_000]);
  await market.send(governance!, addresses.marketplace, marketplaceAbi, "setBidFee", [2n * E18]);
  await market.send(governance!, addresses.marketplace, marketplaceAbi, "setTreasury", [treasury2!.address]);
  await market.send(governance!, addresses.sessionRouter, sessionRouterAbi, "setMaxSessionDuration", [7_200n]);

  // Providers: A with an operator, updated; B without, given one later and back; C registers and leaves.
  await market.registerProvider(providerA!, { operator: operatorA!.address, endpoint: "http://127.0.0.1:1/a" });
  await market.send(providerA!, addresses.providerRegistry, providerRegistryAbi, "update", [
    "http://127.0.0.1:1/a2",
    "ipfs://a2",
  ]);
  await market.registerProvider(providerB!, { endpoint: "http://127.0.0.1:1/b", stake: 120n * E18 });
  await market.send(providerB!, addresses.providerRegistry, providerRegistryAbi, "setOperator", [operatorA!.address]);
  await market.send(providerB!, addresses.providerRegistry, providerRegistryAbi, "setOperator", [
    "0x0000000000000000000000000000000000000000",
  ]);
  await market.registerProvider(providerC!, { endpoint: "http://127.0.0.1:1/c", stake: 60n * E18 });

  // Models: a base model (updated), and an adapter of it that is deregistered.
  const modelId = await market.registerModel(owner!, { name: "base", royaltyBps: 500, tags: ["chat", "small"] });
  await market.send(owner!, addresses.modelRegistry, modelRegistryAbi, "updateModel", [
    modelId,
    700,
    "base-v2",
    "file://base-v2.gguf",
    ["chat"],
  ]);
  const adapterId = await market.registerModel(owner!, {
    name: "adapter",
    royaltyBps: 100,
    baseModelId: modelId,
    stake: false,
  });
  await market.send(owner!, addresses.modelRegistry, modelRegistryAbi, "deregisterModel", [adapterId]);

  // Bids: A posts and updates; B posts, deletes and posts again (two fees); C posts then leaves.
  const bidA = await market.postBid(providerA!, modelId, { ...PRICES_A, perSecond: 2n * 10n ** 12n });
  await market.send(providerA!, addresses.marketplace, marketplaceAbi, "updateBid", [bidA, PRICES_A]);
  const bidB = await market.postBid(providerB!, modelId, PRICES_B);
  await market.send(providerB!, addresses.marketplace, marketplaceAbi, "deleteBid", [bidB]);
  await market.send(providerB!, addresses.marketplace, marketplaceAbi, "postBid", [modelId, PRICES_B]);
  const bidC = await market.postBid(providerC!, modelId, PRICES_A);
  await market.send(providerC!, addresses.marketplace, marketplaceAbi, "deleteBid", [bidC]);
  await market.send(providerC!, addresses.providerRegistry, providerRegistryAbi, "deregister", []);
  await market.requestUnstake(providerC!, 60n * E18);
  await market.withdraw(providerC!, providerC!.address);

  // Sessions.
  const s1 = await market.openSession({ user: user1!, bidId: bidA, signer: operatorA!, deposit: 10n * E18 });
  await market.topUp(s1, 5n * E18);
  await market.increaseTime(120);
  recordSettlement(await market.settleByProvider(s1, operatorA!, STATS));

  await market.send(governance!, addresses.sessionRouter, sessionRouterAbi, "setChallengeWindow", [60]);
  await market.send(governance!, addresses.sessionRouter, sessionRouterAbi, "setProtocolFeeBps", [300]);
  await market.send(governance!, addresses.sessionRouter, sessionRouterAbi, "setTreasury", [treasury2!.address]);
  const s2 = await market.openSession({ user: user2!, bidId: bidB, signer: providerB!, deposit: 20n * E18 });
  const s3 = await market.openSession({ user: user1!, bidId: bidB, signer: providerB!, deposit: 3n * E18 });
  const s4 = await market.openSession({ user: user2!, bidId: bidA, signer: providerA!, deposit: 2n * E18 });
  await market.increaseTime(30);
  const closing2 = await market.requestClose(s2, { ...STATS, outputTokens: 10n });
  recordSettlement(await market.challenge(s2, providerB!, closing2, { ...STATS, outputTokens: 900n }));
  const closing3 = await market.requestClose(s3, { ...STATS, outputTokens: 0n, tpsX1000Avg: 0 });
  recordSettlement(await market.settleByProvider(s4, providerA!, null));
  await market.increaseTime(61);
  recordSettlement(await market.finalize(s3, user2!, closing3));
  const s5 = await market.openSession({ user: user1!, bidId: bidA, signer: operatorA!, deposit: 1n * E18 });

  // Claims: provider A takes its earnings; B leaves its balance in escrow.
  await market.claim(providerA!);
  return {
    modelId,
    adapterId,
    bidA,
    bidB,
    bidC,
    sessions: [s1, s2, s3, s4, s5],
    settled,
    newTreasury: treasury2!.address,
  };
}

const SESSION_FIELDS = `
  id user providerAddress bidId modelId status outcome deposit toppedUp endsAt openedAt openedBlock openedTx
  terms { user sessionKey provider modelId nonce pricePerSecond pricePerInputToken pricePerOutputToken royaltyRecipient royaltyBps feeBps challengeWindow maxDeposit openedAt maxEndsAt }
  closeRequest { closedBy closedAt challengeEndsAt receipt { seq inputTokens outputTokens } }
  settlement { cost providerAmount royaltyAmount feeAmount refund elapsedSeconds treasury closedBy challenged settledAt settledBlock settledTx receipt { seq inputTokens outputTokens requests ttftMsAvg tpsX1000Avg } }
`;

interface SessionJson {
  id: string;
  user: string;
  status: string;
  outcome: string | null;
  deposit: string;
  toppedUp: string;
  openedAt: number;
  terms: Record<string, unknown>;
  closeRequest: { receipt: { outputTokens: string } } | null;
  settlement: {
    cost: string;
    providerAmount: string;
    royaltyAmount: string;
    feeAmount: string;
    refund: string;
    elapsedSeconds: number;
    treasury: string;
    closedBy: string;
    challenged: boolean;
    settledAt: number;
    receipt: { outputTokens: string };
  } | null;
}

let market: MarketDriver;
let history: History;

before(async () => {
  market = await MarketDriver.start();
  history = await scriptHistory(market);
});

after(async () => {
  await market.stop();
});

for (const backend of backends) {
  void describe(`events and queries on ${backend}`, () => {
    let indexer: TestIndexer;
    const accounts = () => market.accounts;
    const ask = <T>(text: string, variables: Record<string, unknown> = {}) => query<T>(indexer.url, text, variables);

    before(async () => {
      indexer = await startTestIndexer(market, backend);
      await indexer.caughtUp();
    });

    after(async () => {
      await indexer.dispose();
    });

    void test("governance parameters are the last values set", async () => {
      const { parameters } = await ask<{ parameters: { contract: string; name: string; value: string }[] }>(
        "{ parameters { contract name value } }",
      );
      const value = (contract: string, name: string) =>
        parameters.find((parameter) => parameter.contract === contract && parameter.name === name)?.value;
      assert.equal(value("staking", "unbondingPeriod"), "0");
      assert.equal(value("providerRegistry", "providerMinStake"), (50n * E18).toString());
      assert.equal(value("providerRegistry", "sessionRouter"), market.addresses.sessionRouter);
      assert.equal(value("modelRegistry", "modelMinStake"), (5n * E18).toString());
      assert.equal(value("modelRegistry", "maxRoyaltyBps"), "3000");
      assert.equal(value("marketplace", "bidFee"), (2n * E18).toString());
      assert.equal(value("marketplace", "treasury"), history.newTreasury);
      assert.equal(value("sessionRouter", "protocolFeeBps"), "300");
      assert.equal(value("sessionRouter", "maxSessionDuration"), "7200");
      assert.equal(value("sessionRouter", "challengeWindow"), "60");
      assert.equal(value("sessionRouter", "treasury"), history.newTreasury);
      assert.equal(parameters.length, 11);
    });

    void test("providers: registration, update, operator changes, deregistration and stake", async () => {
      const [, providerA, operatorA, providerB, , , , providerC] = accounts();
      const { a, b, c } = await ask<Record<string, Record<string, unknown>>>(
        `query ($a: String!, $b: String!, $c: String!) {
          a: provider(id: $a) { id address operator endpoint metadataURI active stake { staked unbonding withdrawn } }
          b: provider(id: $b) { operator endpoint active stake { staked } }
          c: provider(id: $c) { operator active stake { staked unbonding withdrawn unlockAt } }
        }`,
        { a: providerA!.address.toLowerCase(), b: providerB!.address, c: providerC!.address },
      );
      assert.deepEqual(a, {
        id: providerA!.address,
        address: providerA!.address,
        operator: operatorA!.address,
        endpoint: "http://127.0.0.1:1/a2",
        metadataURI: "ipfs://a2",
        active: true,
        stake: { staked: (100n * E18).toString(), unbonding: "0", withdrawn: "0" },
      });
      assert.deepEqual(b, {
        operator: null,
        endpoint: "http://127.0.0.1:1/b",
        active: true,
        stake: { staked: (120n * E18).toString() },
      });
      assert.equal(c!.operator, null);
      assert.equal(c!.active, false);
      assert.deepEqual(c!.stake, {
        staked: "0",
        unbonding: "0",
        withdrawn: (60n * E18).toString(),
        unlockAt: (c!.stake as { unlockAt: number }).unlockAt,
      });
    });

    void test("models: base model updated, adapter linked to it and deregistered", async () => {
      const { model } = await ask<{ model: Record<string, unknown> }>(
        `query ($id: String!) { model(id: $id) { id owner baseModelId contentHash royaltyBps name uri tags active
          adapters { items { id name baseModelId active baseModel { id } } } } }`,
        { id: history.modelId },
      );
      assert.equal(model.owner, accounts()[4]!.address);
      assert.equal(model.baseModelId, null);
      assert.equal(model.royaltyBps, 700);
      assert.equal(model.name, "base-v2");
      assert.equal(model.uri, "file://base-v2.gguf");
      assert.deepEqual(model.tags, ["chat"]);
      assert.equal(model.active, true);
      assert.deepEqual((model.adapters as { items: unknown[] }).items, [
        {
          id: history.adapterId,
          name: "adapter",
          baseModelId: history.modelId,
          active: false,
          baseModel: { id: history.modelId },
        },
      ]);
    });

    void test("bids: posted, updated, deleted and posted again (each post pays the fee of its time)", async () => {
      const { a, b, c } = await ask<Record<string, Record<string, unknown>>>(
        `query ($a: String!, $b: String!, $c: String!) {
          a: bid(id: $a) { providerAddress modelId pricePerSecond pricePerInputToken pricePerOutputToken active feesPaid provider { id } model { name } }
          b: bid(id: $b) { pricePerSecond pricePerOutputToken active feesPaid }
          c: bid(id: $c) { active feesPaid }
        }`,
        { a: history.bidA, b: history.bidB, c: history.bidC },
      );
      assert.deepEqual(a, {
        providerAddress: accounts()[1]!.address,
        modelId: history.modelId,
        pricePerSecond: PRICES_A.perSecond.toString(),
        pricePerInputToken: PRICES_A.perInputToken.toString(),
        pricePerOutputToken: PRICES_A.perOutputToken.toString(),
        active: true,
        feesPaid: (2n * E18).toString(),
        provider: { id: accounts()[1]!.address },
        model: { name: "base-v2" },
      });
      assert.deepEqual(b, {
        pricePerSecond: PRICES_B.perSecond.toString(),
        pricePerOutputToken: PRICES_B.perOutputToken.toString(),
        active: true,
        feesPaid: (4n * E18).toString(),
      });
      assert.deepEqual(c, { active: false, feesPaid: (2n * E18).toString() });
    });

    void test("sessions: terms as opened, top-ups, close requests, challenges, finalization and settlements", async () => {
      const [s1, s2, s3, s4, s5] = history.sessions as [
        OpenedSession,
        OpenedSession,
        OpenedSession,
        OpenedSession,
        OpenedSession,
      ];
      const get = async (session: OpenedSession) =>
        (
          await ask<{ session: SessionJson }>(`query ($id: String!) { session(id: $id) { ${SESSION_FIELDS} } }`, {
            id: session.sessionId,
          })
        ).session;

      const one = await get(s1);
      const terms = s1.terms;
      assert.deepEqual(
        Object.fromEntries(Object.keys(terms).map((key) => [key, one.terms[key]])),
        Object.fromEntries(
          Object.entries(terms).map(([key, value]) => [key, typeof value === "bigint" ? value.toString() : value]),
        ),
        "the terms are the event's, field by field",
      );
      assert.equal(one.deposit, (15n * E18).toString());
      assert.equal(one.toppedUp, (5n * E18).toString());
      assert.equal(one.status, "SETTLED");
      assert.equal(one.outcome, "SUCCESS");

      for (const [session, outcome, challenged] of [
        [s1, "SUCCESS", false],
        [s2, "SUCCESS", true],
        [s3, "FAILURE", false],
        [s4, "UNRATED", false],
      ] as const) {
        const row = await get(session);
        const chain = history.settled.get(session.sessionId)!;
        assert.equal(row.outcome, outcome, session.sessionId);
        assert.deepEqual(
          {
            cost: row.settlement!.cost,
            providerAmount: row.settlement!.providerAmount,
            royaltyAmount: row.settlement!.royaltyAmount,
            feeAmount: row.settlement!.feeAmount,
            refund: row.settlement!.refund,
            elapsedSeconds: row.settlement!.elapsedSeconds,
            closedBy: row.settlement!.closedBy,
            challenged: row.settlement!.challenged,
            outputTokens: row.settlement!.receipt.outputTokens,
          },
          {
            cost: chain.cost.toString(),
            providerAmount: chain.providerAmount.toString(),
            royaltyAmount: chain.royaltyAmount.toString(),
            feeAmount: chain.feeAmount.toString(),
            refund: chain.refund.toString(),
            elapsedSeconds: Number(chain.elapsedSeconds),
            closedBy: chain.closedBy,
            challenged,
            outputTokens: chain.outputTokens.toString(),
          },
        );
        assert.ok(row.settlement!.settledAt >= row.openedAt);
      }
      // The fee went to the treasury of the time: the first session's to the original one.
      assert.equal((await get(s1)).settlement!.treasury, accounts()[0]!.address);
      assert.equal((await get(s2)).settlement!.treasury, history.newTreasury);
      assert.equal((await get(s2)).terms.challengeWindow, 60);
      assert.equal((await get(s2)).terms.feeBps, 300);

      const open = await get(s5);
      assert.equal(open.status, "OPEN");
      assert.equal(open.outcome, null);
      assert.equal(open.settlement, null);
      assert.equal(open.closeRequest, null);
    });

    void test("earnings by role match the escrow's balances, and a claim empties every role", async () => {
      const [governance, providerA, , providerB, owner] = accounts();
      for (const account of [governance!, providerA!, providerB!, owner!, market.accounts[8]!]) {
        const { earnings } = await ask<{
          earnings: { claimable: string; claimed: string; roles: { role: string; claimable: string }[] };
        }>(
          `query ($address: String!) { earnings(address: $address) { claimable claimed roles { role earned claimed claimable } } }`,
          { address: account.address },
        );
        assert.equal(earnings.claimable, (await market.escrowBalance(account.address)).toString(), account.address);
      }
      const { a, b } = await ask<
        Record<string, { earned: string; claimed: string; claimable: string; roles: { role: string }[] }>
      >(
        `query ($a: String!, $b: String!) { a: earnings(address: $a) { earned claimed claimable roles { role } } b: earnings(address: $b) { earned claimed claimable roles { role } } }`,
        { a: providerA!.address, b: owner!.address },
      );
      assert.equal(a!.claimable, "0");
      assert.equal(a!.claimed, a!.earned);
      assert.deepEqual(
        a!.roles.map((role) => role.role),
        ["PROVIDER"],
      );
      assert.deepEqual(
        b!.roles.map((role) => role.role),
        ["MODEL_OWNER"],
      );
      const sessionRoyalties = [...history.settled.values()].reduce((sum, s) => sum + s.royaltyAmount, 0n);
      assert.equal(b!.earned, sessionRoyalties.toString());
    });

    void test("_meta names the chain, the indexed block and the lag", async () => {
      const { _meta } = await ask<{
        _meta: {
          chainId: number;
          block: { number: number; hash: string; timestamp: number };
          syncing: boolean;
          lag: number;
          deploymentAddress: string;
        };
      }>("{ _meta { chainId deploymentAddress block { number hash timestamp } syncing lag } }");
      const head = await market.public.getBlock();
      assert.equal(_meta.chainId, 31337);
      assert.equal(_meta.deploymentAddress, market.addresses.sessionRouter);
      assert.equal(_meta.block.number, Number(head.number));
      assert.equal(_meta.block.hash, head.hash);
      assert.equal(_meta.block.timestamp, Number(head.timestamp));
      assert.equal(_meta.syncing, false);
      assert.equal(_meta.lag, 0);
    });

    void test("session filters: user, provider, model, bid, status, outcome and time ranges", async () => {
      const [s1, s2, s3, s4, s5] = history.sessions;
      const ids = async (where: Record<string, unknown>) =>
        (
          await ask<{ sessions: { items: { id: string }[] } }>(
            `query ($where: SessionFilter) { sessions(where: $where, orderBy: openedAt) { items { id } } }`,
            { where },
          )
        ).sessions.items.map((item) => item.id);
      const [, providerA, , providerB, , user1, user2] = accounts();
      assert.deepEqual(await ids({ user: user1!.address }), [s1!.sessionId, s3!.sessionId, s5!.sessionId]);
      assert.deepEqual(await ids({ user: user2!.address.toLowerCase() }), [s2!.sessionId, s4!.sessionId]);
      assert.deepEqual(await ids({ provider: providerB!.address }), [s2!.sessionId, s3!.sessionId]);
      assert.deepEqual(await ids({ provider: providerA!.address, user: user2!.address }), [s4!.sessionId]);
      assert.deepEqual(
        await ids({ modelId: history.modelId }),
        history.sessions.map((s) => s.sessionId),
      );
      assert.deepEqual(await ids({ modelId: history.adapterId }), []);
      assert.deepEqual(await ids({ bidId: history.bidA }), [s1!.sessionId, s4!.sessionId, s5!.sessionId]);
      assert.deepEqual(await ids({ status: "OPEN" }), [s5!.sessionId]);
      assert.deepEqual(
        await ids({ status_in: ["OPEN", "SETTLED"] }),
        history.sessions.map((s) => s.sessionId),
      );
      assert.deepEqual(await ids({ outcome: "FAILURE" }), [s3!.sessionId]);
      assert.deepEqual(await ids({ outcome: "UNRATED" }), [s4!.sessionId]);
      const { sessions } = await ask<{
        sessions: { items: { id: string; openedAt: number; settlement: { settledAt: number } | null }[] };
      }>("{ sessions(orderBy: openedAt) { items { id openedAt settlement { settledAt } } } }");
      const second = sessions.items[1]!;
      assert.deepEqual(
        await ids({ openedAfter: second.openedAt }),
        sessions.items.filter((s) => s.openedAt >= second.openedAt).map((s) => s.id),
      );
      assert.deepEqual(
        await ids({ openedBefore: second.openedAt }),
        sessions.items.filter((s) => s.openedAt < second.openedAt).map((s) => s.id),
      );
      const settledAt = sessions.items.find((s) => s.id === s2!.sessionId)!.settlement!.settledAt;
      assert.deepEqual(
        await ids({ settledAfter: settledAt, settledBefore: settledAt + 1 }),
        sessions.items.filter((s) => s.settlement?.settledAt === settledAt).map((s) => s.id),
      );
    });

    void test("orders: every sort key both ways, ties broken by id", async () => {
      const sorted = async (orderBy: string, orderDirection: string) =>
        (
          await ask<{
            sessions: {
              items: {
                id: string;
                openedAt: number;
                deposit: string;
                settlement: { cost: string; settledAt: number } | null;
              }[];
            };
          }>(
            `query { sessions(orderBy: ${orderBy}, orderDirection: ${orderDirection}) { items { id openedAt deposit settlement { cost settledAt } } } }`,
          )
        ).sessions.items;
      const keyOf: Record<string, (item: Awaited<ReturnType<typeof sorted>>[number]) => bigint> = {
        openedAt: (item) => BigInt(item.openedAt),
        settledAt: (item) => BigInt(item.settlement?.settledAt ?? -1),
        cost: (item) => BigInt(item.settlement?.cost ?? -1),
        deposit: (item) => BigInt(item.deposit),
      };
      for (const orderBy of Object.keys(keyOf)) {
        for (const direction of ["asc", "desc"]) {
          const items = await sorted(orderBy, direction);
          assert.equal(items.length, 5);
          const expected = [...items].sort((a, b) => {
            const order =
              keyOf[orderBy]!(a) < keyOf[orderBy]!(b)
                ? -1
                : keyOf[orderBy]!(a) > keyOf[orderBy]!(b)
                  ? 1
                  : a.id < b.id
                    ? -1
                    : 1;
            return direction === "asc" ? order : -order;
          });
          assert.deepEqual(
            items.map((item) => item.id),
            expected.map((item) => item.id),
            `${orderBy} ${direction}`,
          );
        }
      }
      const bids = await ask<{ bids: { items: { pricePerSecond: string }[] } }>(
        "{ bids(orderBy: pricePerSecond, orderDirection: desc) { items { pricePerSecond } } }",
      );
      assert.deepEqual(
        bids.bids.items.map((bid) => bid.pricePerSecond),
        [PRICES_B.perSecond, PRICES_A.perSecond, PRICES_A.perSecond].map(String),
      );
      const models = await ask<{ models: { items: { name: string }[] } }>(
        "{ models(orderBy: name) { items { name } } }",
      );
      assert.deepEqual(
        models.models.items.map((model) => model.name),
        ["adapter", "base-v2"],
      );
      const providers = await ask<{ providers: { items: { id: string }[] } }>(
        "{ providers(orderBy: address, orderDirection: desc) { items { id } } }",
      );
      const addresses = providers.providers.items.map((provider) => provider.id);
      assert.deepEqual(addresses, [...addresses].sort().reverse());
    });

    void test("pages: every page boundary, cursors, first: 0 and the last page", async () => {
      const all = (
        await ask<{ sessions: { items: { id: string }[] } }>("{ sessions(orderBy: deposit) { items { id } } }")
      ).sessions.items.map((s) => s.id);
      for (const size of [1, 2, 3, 5, 6]) {
        const seen: string[] = [];
        let after: string | null = null;
        for (let page = 0; page < 10; page++) {
          type Page = {
            sessions: { items: { id: string }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } };
          };
          const { sessions }: Page = await ask<Page>(
            "query ($first: Int, $after: String) { sessions(orderBy: deposit, first: $first, after: $after) { items { id } pageInfo { hasNextPage endCursor } } }",
            { first: size, after },
          );
          seen.push(...sessions.items.map((item) => item.id));
          assert.equal(sessions.pageInfo.hasNextPage, seen.length < all.length, `size ${size} page ${page}`);
          if (!sessions.pageInfo.hasNextPage) break;
          after = sessions.pageInfo.endCursor;
        }
        assert.deepEqual(seen, all, `pages of ${size}`);
      }
      const empty = await ask<{ sessions: { items: unknown[]; pageInfo: { hasNextPage: boolean; endCursor: null } } }>(
        "{ sessions(first: 0) { items { id } pageInfo { hasNextPage endCursor } } }",
      );
      assert.deepEqual(empty.sessions, { items: [], pageInfo: { hasNextPage: true, endCursor: null } });
      const bad = await graphql(indexer.url, '{ sessions(after: "not-a-cursor") { items { id } } }');
      assert.match(bad.errors?.[0]?.message ?? "", /after is not a cursor/);
    });

    void test("provider, model and bid filters and the relations between them", async () => {
      const [, providerA, operatorA, providerB] = accounts();
      const active = await ask<{ providers: { items: { id: string }[] } }>(
        "{ providers(where: { active: true }) { items { id } } }",
      );
      assert.deepEqual(active.providers.items.map((p) => p.id).sort(), [providerA!.address, providerB!.address].sort());
      const byOperator = await ask<{ providers: { items: { id: string }[] } }>(
        `{ providers(where: { operator: "${operatorA!.address}" }) { items { id } } }`,
      );
      assert.deepEqual(
        byOperator.providers.items.map((p) => p.id),
        [providerA!.address],
      );
      const adapters = await ask<{ models: { items: { name: string }[] } }>(
        "{ models(where: { isAdapter: true }) { items { name } } }",
      );
      assert.deepEqual(
        adapters.models.items.map((m) => m.name),
        ["adapter"],
      );
      const tagged = await ask<{ models: { items: { name: string }[] } }>(
        '{ models(where: { tag: "chat", active: true }) { items { name } } }',
      );
      assert.deepEqual(
        tagged.models.items.map((m) => m.name),
        ["base-v2"],
      );
      const bids = await ask<{ bids: { items: { id: string }[] } }>(
        `query ($model: String!) { bids(where: { modelId: $model, active: true }, orderBy: postedBlock) { items { id } } }`,
        { model: history.modelId },
      );
      assert.deepEqual(
        bids.bids.items.map((b) => b.id),
        [history.bidA, history.bidB],
      );
      const nested = await ask<{
        provider: {
          bids: {
            items: {
              id: string;
              sessions: {
                items: { id: string; provider: { id: string }; bid: { id: string }; model: { id: string } }[];
              };
            }[];
          };
        };
      }>(
        `query ($id: String!) { provider(id: $id) { bids { items { id sessions(where: { status: SETTLED }) { items { id provider { id } bid { id } model { id } } } } } } }`,
        { id: providerA!.address },
      );
      const bid = nested.provider.bids.items[0]!;
      assert.equal(bid.id, history.bidA);
      assert.deepEqual(
        bid.sessions.items.map((s) => s.id),
        [history.sessions[0]!.sessionId, history.sessions[3]!.sessionId],
      );
      for (const session of bid.sessions.items) {
        assert.deepEqual(
          [session.provider.id, session.bid.id, session.model.id],
          [providerA!.address, history.bidA, history.modelId],
        );
      }
    });

    void test("bad arguments are refused with the argument named", async () => {
      for (const [text, pattern] of [
        ['{ provider(id: "0x1234") { id } }', /id is not an address/],
        ['{ model(id: "tiny") { id } }', /id is not a 32-byte hex id/],
        ['{ sessions(where: { user: "alice" }) { items { id } } }', /where\.user is not an address/],
        ["{ sessions(first: -1) { items { id } } }", /first must be between 0 and 1000/],
        ['{ providerRankings(modelId: "0x00", first: 1) { rank } }', /modelId is not a 32-byte hex id/],
      ] as const) {
        const result = await graphql(indexer.url, text);
        assert.match(result.errors?.[0]?.message ?? "", pattern, text);
      }
      const missing = await ask<{ session: null; provider: null }>(
        `{ session(id: "0x${"0".repeat(64)}") { id } provider(id: "0x${"0".repeat(40)}") { id } }`,
      );
      assert.deepEqual(missing, { session: null, provider: null });
    });
  });
}
