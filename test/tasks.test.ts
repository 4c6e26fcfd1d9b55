/**
 * The operator tasks of scripts/tasks.ts, run in process (`hre.run`) against the fixture market,
 * with its addresses written as Ignition would write them and passed with `--deployment`.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import hre, { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { GOVERNANCE_PARAMETERS } from "../scripts/tasks";
import {
  E18,
  type MarketWithBid,
  PARAMS,
  PRICES,
  marketWithBid,
  openSession,
  receiptFor,
  signReceipt,
} from "./fixtures";

const DEFAULT_ADMIN_ROLE = ethers.ZeroHash;
const tmp = mkdtempSync(join(tmpdir(), "market-tasks-"));
after(function () {
  rmSync(tmp, { recursive: true, force: true });
});

/** The fixture market's addresses in Ignition's `deployed_addresses.json` shape. */
async function writeDeployment(market: MarketWithBid, name = "deployed_addresses.json"): Promise<string> {
  const futures = {
    "LocalMarket#MarketToken": market.token,
    "LocalMarket#Staking": market.staking,
    "LocalMarket#ProviderRegistry": market.providerRegistry,
    "LocalMarket#ModelRegistry": market.modelRegistry,
    "LocalMarket#Marketplace": market.marketplace,
    "LocalMarket#SessionRouter": market.sessionRouter,
    "LocalMarket#Escrow": market.escrow,
  };
  const file: Record<string, string> = {};
  for (const [id, contract] of Object.entries(futures)) file[id] = await contract.getAddress();
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(file, null, 2));
  return path;
}

/** The market with a bid, an open session and its deployment file. */
async function deployedMarket() {
  const market = await marketWithBid();
  const session = await openSession(market);
  const deployment = await writeDeployment(market);
  return { market, session, deployment };
}

/** Runs a task and returns what it printed. */
async function run(task: string, args: Record<string, unknown>): Promise<string> {
  const printed: string[] = [];
  const original = console.log;
  console.log = (...parts: unknown[]) => printed.push(parts.map(String).join(" "));
  try {
    await hre.run(task, args);
  } finally {
    console.log = original;
  }
  return printed.join("\n");
}

/** The message a task fails with (fails the test when it succeeds). */
async function failure(task: string, args: Record<string, unknown>): Promise<string> {
  try {
    await run(task, args);
  } catch (error) {
    expect((error as Error).name).to.equal("HardhatPluginError");
    return (error as Error).message;
  }
  expect.fail(`${task} succeeded`);
}

/** A task's printed `label value` line. */
function field(output: string, label: string): string | undefined {
  const line = output.split("\n").find((candidate) => candidate.trimStart().startsWith(`${label}  `));
  return line?.trim().slice(label.length).trim();
}

describe("operator tasks", function () {
  describe("the deployment file", function () {
    it("a missing file fails with protocol's message", async function () {
      const { market } = await loadFixture(deployedMarket);
      const path = join(tmp, "absent.json");
      expect(await failure("market:provider", { address: market.provider.address, deployment: path })).to.contain(
        `no deployment at ${path}`,
      );
    });

    it("a malformed file fails naming what is missing", async function () {
      const { market } = await loadFixture(deployedMarket);
      const path = join(tmp, "no-router.json");
      writeFileSync(path, JSON.stringify({ "LocalMarket#MarketToken": await market.token.getAddress() }));
      expect(await failure("market:provider", { address: market.provider.address, deployment: path })).to.contain(
        "missing or malformed address for staking",
      );
    });

    it("a task run without --network (the in-process chain) says to add --network localhost", async function () {
      const { market } = await loadFixture(deployedMarket);
      const message = await failure("market:provider", { address: market.provider.address });
      expect(message).to.contain("add --network localhost");
      expect(message).to.contain("in-process network");
      expect(message).not.to.contain("no contract at");
    });

    it("a file of another chain (no code at its addresses) fails clearly", async function () {
      await loadFixture(deployedMarket);
      const path = join(tmp, "other-chain.json");
      const nowhere = ethers.getAddress("0x000000000000000000000000000000000000dead");
      const file = Object.fromEntries(
        ["MarketToken", "Staking", "ProviderRegistry", "ModelRegistry", "Marketplace", "SessionRouter", "Escrow"].map(
          (name) => [`LocalMarket#${name}`, nowhere],
        ),
      );
      writeFileSync(path, JSON.stringify(file));
      const message = await failure("market:provider", { address: nowhere, deployment: path });
      expect(message).to.contain(`no contract at ${nowhere}`);
      expect(message).to.contain("belongs to another chain");
    });
  });

  describe("market:provider", function () {
    it("prints the registration, stake, open sessions and bids", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const output = await run("market:provider", { address: market.provider.address, deployment });
      expect(output.split("\n")[0]).to.equal(`provider ${market.provider.address}`);
      expect(field(output, "active")).to.equal("yes");
      expect(field(output, "operator")).to.equal(market.operator.address);
      expect(field(output, "endpoint")).to.equal("http://127.0.0.1:8080");
      expect(field(output, "stake")).to.equal("100 INFER (minimum 100 INFER: enough)");
      expect(field(output, "unbonding")).to.equal("0 INFER");
      expect(field(output, "open sessions")).to.equal("1");
      expect(field(output, "next nonce")).to.equal(
        String(await market.sessionRouter.nextApprovalNonce(market.provider.address)),
      );
      expect(await market.sessionRouter.nextApprovalNonce(market.provider.address)).to.be.greaterThan(0n);
      expect(field(output, "bids")).to.equal("1");
      expect(output).to.contain(`${market.bidId} model ${market.modelId} active`);
    });

    it("shows stake that is unbonding and a stake below the minimum", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      await market.staking.connect(market.provider).requestUnstake(40n * E18);
      const output = await run("market:provider", { address: market.provider.address, deployment });
      expect(field(output, "stake")).to.equal("60 INFER (minimum 100 INFER: TOO LOW)");
      expect(field(output, "unbonding")).to.match(/^40 INFER, unlocks \d{4}-\d\d-\d\dT.*Z \(\d+\)$/);
    });

    it("refuses an address that is not registered, or not an address", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      expect(await failure("market:provider", { address: market.stranger.address, deployment })).to.equal(
        `provider ${market.stranger.address} is not registered (ProviderRegistry ${await market.providerRegistry.getAddress()})`,
      );
      expect(await failure("market:provider", { address: "0x1234", deployment })).to.contain(
        "--address must be a 0x-prefixed 20-byte address",
      );
    });
  });

  describe("market:bid", function () {
    it("prints a bid found by id, and the same found by provider and model", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const byId = await run("market:bid", { id: market.bidId, deployment });
      expect(byId.split("\n")[0]).to.equal(`bid ${market.bidId}`);
      expect(field(byId, "active")).to.equal("yes");
      expect(field(byId, "provider")).to.equal(market.provider.address);
      expect(field(byId, "model")).to.equal(`${market.modelId} "tiny"`);
      expect(field(byId, "model owner")).to.equal(market.modelOwner.address);
      expect(field(byId, "royalty")).to.equal("500 bps");
      expect(field(byId, "per second")).to.equal(`0.000001 INFER (${PRICES.perSecond})`);
      expect(field(byId, "per input token")).to.equal(`0.000000001 INFER (${PRICES.perInputToken})`);
      expect(field(byId, "per output token")).to.equal(`0.000000004 INFER (${PRICES.perOutputToken})`);
      const byProviderAndModel = await run("market:bid", {
        provider: market.provider.address,
        model: market.modelId,
        deployment,
      });
      expect(byProviderAndModel).to.equal(byId);
    });

    it("says when a bid or its model is no longer active", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      await market.marketplace.connect(market.provider).deleteBid(market.bidId);
      await market.modelRegistry.connect(market.modelOwner).deregisterModel(market.modelId);
      const output = await run("market:bid", { id: market.bidId, deployment });
      expect(field(output, "active")).to.equal("no");
      expect(field(output, "model")).to.equal(`${market.modelId} "tiny" (not active)`);
    });

    it("refuses an unknown bid, a malformed id and ambiguous or missing flags", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const unknown = ethers.id("no such bid");
      expect(await failure("market:bid", { id: unknown, deployment })).to.equal(
        `no bid ${unknown} (Marketplace ${await market.marketplace.getAddress()})`,
      );
      expect(await failure("market:bid", { id: "0x12", deployment })).to.contain(
        "--id must be a 0x-prefixed 32-byte hex string",
      );
      expect(await failure("market:bid", { id: market.bidId, provider: market.provider.address, deployment })).to.equal(
        "give either --id or --provider with --model, not both",
      );
      expect(await failure("market:bid", { provider: market.provider.address, deployment })).to.equal(
        "give --id, or --provider and --model",
      );
      expect(await failure("market:bid", { provider: "nope", model: market.modelId, deployment })).to.contain(
        "--provider must be a 0x-prefixed 20-byte address",
      );
    });
  });

  describe("market:session", function () {
    it("prints an open session's terms and state", async function () {
      const { market, session, deployment } = await loadFixture(deployedMarket);
      const output = await run("market:session", { id: session.sessionId, deployment });
      expect(output.split("\n")[0]).to.equal(`session ${session.sessionId}`);
      expect(output).to.contain(`terms (SessionOpened, block ${session.tx.blockNumber}, tx ${session.tx.hash})`);
      expect(field(output, "user")).to.equal(market.user.address);
      expect(field(output, "session key")).to.equal(market.user.address);
      expect(field(output, "provider")).to.equal(market.provider.address);
      expect(field(output, "bid")).to.equal(market.bidId);
      expect(field(output, "model")).to.equal(market.modelId);
      expect(field(output, "approval nonce")).to.equal(String(session.approval.nonce));
      expect(field(output, "per second")).to.equal(`0.000001 INFER (${PRICES.perSecond})`);
      expect(output).to.contain(`royalty           500 bps to ${market.modelOwner.address}`);
      expect(field(output, "protocol fee")).to.equal(`${PARAMS.protocolFeeBps} bps`);
      expect(field(output, "challenge window")).to.equal(`${PARAMS.challengeWindow} s`);
      expect(field(output, "max deposit")).to.equal("1000 INFER");
      expect(field(output, "opening deposit")).to.equal("100 INFER");
      expect(field(output, "top-ups")).to.equal("0");
      expect(output).to.contain("state: Open");
      expect(field(output, "deposit")).to.equal("100 INFER");
      expect(field(output, "ends at")).to.equal(`${new Date(session.endsAt * 1000).toISOString()} (${session.endsAt})`);
    });

    it("prints a closing session's challenge window, and a settled session's settlement", async function () {
      const { market, session, deployment } = await loadFixture(deployedMarket);
      const receipt = receiptFor(session.sessionId, 2n, 1_000n, 500n);
      const userSignature = await signReceipt(market, receipt);
      await market.sessionRouter.connect(market.user).topUp(session.terms, 10n * E18);
      await market.sessionRouter.connect(market.user).closeSession(session.terms, receipt, userSignature, "0x");
      const closing = await run("market:session", { id: session.sessionId, deployment });
      const closedAt = (await market.sessionRouter.getSessionState(session.sessionId)).closedAt;
      expect(closing).to.contain("state: Closing");
      expect(field(closing, "top-ups")).to.equal("1");
      expect(field(closing, "deposit")).to.equal("110 INFER");
      expect(field(closing, "challenge ends")).to.contain(`(${closedAt + PARAMS.challengeWindow})`);
      expect(field(closing, "pending receipt")).to.equal("seq 2");

      await time.increase(PARAMS.challengeWindow + 1n);
      await market.sessionRouter.connect(market.stranger).finalize(session.terms, receipt);
      const settled = await run("market:session", { id: session.sessionId, deployment });
      const elapsed = closedAt - BigInt(session.terms.openedAt);
      const cost = elapsed * PRICES.perSecond + 1_000n * PRICES.perInputToken + 500n * PRICES.perOutputToken;
      expect(settled).to.match(/state: settled \(block \d+\)/);
      expect(field(settled, "closed by")).to.equal(market.stranger.address);
      expect(field(settled, "elapsed")).to.equal(`${elapsed} s`);
      expect(field(settled, "fee credited to")).to.equal(market.treasury.address);
      expect(field(settled, "receipt")).to.equal("seq 2, 1000 in / 500 out tokens, 2 requests");
      expect(field(settled, "cost")).to.equal(`${ethers.formatUnits(cost, 18).replace(/\.0$/, "")} INFER`);
      expect(field(settled, "refund")).to.equal(
        `${ethers.formatUnits(110n * E18 - cost, 18).replace(/\.0$/, "")} INFER`,
      );
    });

    it("refuses an unknown session and a malformed id", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const unknown = ethers.id("no such session");
      expect(await failure("market:session", { id: unknown, deployment })).to.equal(
        `no session ${unknown}: SessionRouter ${await market.sessionRouter.getAddress()} emitted no SessionOpened for it since block 0`,
      );
      expect(await failure("market:session", { id: "session-1", deployment })).to.contain(
        "--id must be a 0x-prefixed 32-byte hex string",
      );
    });
  });

  describe("market:set-param", function () {
    /** A valid new value for each parameter, and how to read it back from each contract. */
    function cases(market: MarketWithBid) {
      return {
        protocolFeeBps: { value: "300", read: [() => market.sessionRouter.protocolFeeBps()] },
        maxSessionDuration: { value: "7200", read: [() => market.sessionRouter.maxSessionDuration()] },
        challengeWindow: { value: "600", read: [() => market.sessionRouter.challengeWindow()] },
        treasury: {
          value: market.others[0].address,
          read: [() => market.sessionRouter.treasury(), () => market.marketplace.treasury()],
        },
        bidFee: { value: String(2n * E18), read: [() => market.marketplace.bidFee()] },
        providerMinStake: { value: String(200n * E18), read: [() => market.providerRegistry.providerMinStake()] },
        modelMinStake: { value: String(20n * E18), read: [() => market.modelRegistry.modelMinStake()] },
        maxRoyaltyBps: { value: "3000", read: [() => market.modelRegistry.maxRoyaltyBps()] },
        unbondingPeriod: { value: "86400", read: [() => market.staking.unbondingPeriod()] },
      } satisfies Record<keyof typeof GOVERNANCE_PARAMETERS, { value: string; read: (() => Promise<unknown>)[] }>;
    }

    it("sets each of the nine parameters through its contract's setter", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const all = cases(market);
      expect(Object.keys(all).sort()).to.deep.equal(Object.keys(GOVERNANCE_PARAMETERS).sort());
      for (const [name, { value, read }] of Object.entries(all)) {
        const before = await Promise.all(read.map((get) => get()));
        const output = await run("market:set-param", { name, value, deployment });
        const lines = output.split("\n");
        expect(lines, name).to.have.length(read.length);
        for (const [index, contract] of GOVERNANCE_PARAMETERS[name].contracts.entries()) {
          expect(lines[index]).to.match(
            new RegExp(`^${contract}\\.${name}: ${String(before[index])} -> ${value} \\(tx 0x[0-9a-f]{64}\\)$`),
          );
          expect(String(await read[index]())).to.equal(value);
        }
      }
    });

    it("emits the contract's event", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const blockBefore = await ethers.provider.getBlockNumber();
      await run("market:set-param", { name: "protocolFeeBps", value: "300", deployment });
      const filter = market.sessionRouter.filters.ProtocolFeeSet();
      const events = await market.sessionRouter.queryFilter(filter, blockBefore + 1);
      expect(events.map((event) => event.args.protocolFeeBps)).to.deep.equal([300n]);
    });

    it("sets a parameter two contracts hold on the one --contract names", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const treasury = market.others[0].address;
      const output = await run("market:set-param", {
        name: "treasury",
        value: treasury.toLowerCase(),
        contract: "marketplace",
        deployment,
      });
      expect(output).to.match(
        new RegExp(`^Marketplace\\.treasury: ${market.treasury.address} -> ${treasury} \\(tx 0x[0-9a-f]{64}\\)$`),
      );
      expect(await market.marketplace.treasury()).to.equal(treasury);
      expect(await market.sessionRouter.treasury()).to.equal(market.treasury.address);
    });

    it("sends nothing when the value is already set", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const blockBefore = await ethers.provider.getBlockNumber();
      const output = await run("market:set-param", {
        name: "challengeWindow",
        value: String(PARAMS.challengeWindow),
        deployment,
      });
      expect(output).to.equal(`SessionRouter.challengeWindow is already ${PARAMS.challengeWindow}: nothing sent`);
      expect(await ethers.provider.getBlockNumber()).to.equal(blockBefore);
      expect(await market.sessionRouter.challengeWindow()).to.equal(PARAMS.challengeWindow);
    });

    it("refuses an unknown parameter, listing the known ones", async function () {
      const { deployment } = await loadFixture(deployedMarket);
      expect(await failure("market:set-param", { name: "feeBps", value: "1", deployment })).to.equal(
        'unknown parameter "feeBps"; known parameters: protocolFeeBps, maxSessionDuration, challengeWindow, treasury, ' +
          "bidFee, providerMinStake, modelMinStake, maxRoyaltyBps, unbondingPeriod",
      );
      expect(await failure("market:set-param", { name: "toString", value: "1", deployment })).to.contain(
        'unknown parameter "toString"',
      );
    });

    it("refuses an unknown contract, and a contract that does not hold the parameter", async function () {
      const { deployment } = await loadFixture(deployedMarket);
      expect(
        await failure("market:set-param", { name: "bidFee", value: "1", contract: "Escrow", deployment }),
      ).to.equal(
        'unknown contract "Escrow"; governed contracts: Staking, ProviderRegistry, ModelRegistry, Marketplace, SessionRouter',
      );
      expect(
        await failure("market:set-param", { name: "bidFee", value: "1", contract: "Staking", deployment }),
      ).to.equal("Staking has no parameter bidFee; it lives in Marketplace");
    });

    it("refuses values that are not numbers, do not fit the type or are not addresses", async function () {
      const { deployment } = await loadFixture(deployedMarket);
      expect(await failure("market:set-param", { name: "bidFee", value: "1.5", deployment })).to.contain(
        '--value of bidFee must be a whole number (base units, seconds or bps), got "1.5"',
      );
      expect(await failure("market:set-param", { name: "protocolFeeBps", value: "70000", deployment })).to.equal(
        "--value of protocolFeeBps does not fit in uint16: 70000",
      );
      expect(await failure("market:set-param", { name: "treasury", value: "0xabc", deployment })).to.equal(
        '--value of treasury must be an address, got "0xabc"',
      );
    });

    it("reports the contract's error when it refuses the value", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      expect(await failure("market:set-param", { name: "protocolFeeBps", value: "5000", deployment })).to.equal(
        "SessionRouter.setProtocolFeeBps(5000) failed: ProtocolFeeTooHigh(5000, 1000)",
      );
      expect(await market.sessionRouter.protocolFeeBps()).to.equal(PARAMS.protocolFeeBps);
    });
  });

  describe("market:transfer-governance", function () {
    it("grants the admin role on the five contracts to --to, then renounces the caller's", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      const successor = market.others[1].address;
      const output = await run("market:transfer-governance", { to: successor, deployment });
      const names = ["Staking", "ProviderRegistry", "ModelRegistry", "Marketplace", "SessionRouter"];
      const lines = output.split("\n");
      expect(lines).to.have.length(11);
      names.forEach((name, index) => {
        expect(lines[index]).to.match(
          new RegExp(`^${name}: granted DEFAULT_ADMIN_ROLE to ${successor} \\(tx 0x[0-9a-f]{64}\\)$`),
        );
        expect(lines[index + 5]).to.match(
          new RegExp(`^${name}: ${market.governance.address} renounced DEFAULT_ADMIN_ROLE \\(tx 0x[0-9a-f]{64}\\)$`),
        );
      });
      expect(lines[10]).to.equal(`governance of the market is now ${successor}`);
      for (const contract of [
        market.staking,
        market.providerRegistry,
        market.modelRegistry,
        market.marketplace,
        market.sessionRouter,
      ]) {
        expect(await contract.hasRole(DEFAULT_ADMIN_ROLE, successor)).to.equal(true);
        expect(await contract.hasRole(DEFAULT_ADMIN_ROLE, market.governance.address)).to.equal(false);
      }
      // The old governance can no longer set anything.
      expect(await failure("market:set-param", { name: "protocolFeeBps", value: "300", deployment })).to.equal(
        `${market.governance.address} does not hold DEFAULT_ADMIN_ROLE on SessionRouter ${await market.sessionRouter.getAddress()}`,
      );
      expect(await failure("market:transfer-governance", { to: market.others[2].address, deployment })).to.equal(
        `${market.governance.address} does not hold DEFAULT_ADMIN_ROLE on Staking: nothing was changed`,
      );
    });

    it("refuses a malformed, zero or own address", async function () {
      const { market, deployment } = await loadFixture(deployedMarket);
      expect(await failure("market:transfer-governance", { to: "multisig", deployment })).to.contain(
        "--to must be a 0x-prefixed 20-byte address",
      );
      expect(await failure("market:transfer-governance", { to: ethers.ZeroAddress, deployment })).to.equal(
        "--to must not be the zero address",
      );
      expect(await failure("market:transfer-governance", { to: market.governance.address, deployment })).to.equal(
        `--to is the caller ${market.governance.address}: nothing to transfer`,
      );
      expect(await market.sessionRouter.hasRole(DEFAULT_ADMIN_ROLE, market.governance.address)).to.equal(true);
    });
  });
});
