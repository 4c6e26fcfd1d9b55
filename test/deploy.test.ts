/**
 * The Ignition modules and parameter files, deployed on Hardhat's in-process chain, and
 * protocol's reader of Ignition's address files.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ethers, ignition } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  type DeploymentParameters,
  type IgnitionModule,
  type IgnitionModuleResult,
  isModuleParameterRuntimeValue,
} from "@nomicfoundation/ignition-core";
import InferenceMarketModule from "../ignition/modules/InferenceMarket";
import LocalMarketModule from "../ignition/modules/LocalMarket";
import TestnetMarketModule from "../ignition/modules/TestnetMarket";
import { DeploymentNotFoundError, InvalidDeploymentError, deploymentFile, loadMarketAddresses } from "../protocol";
import type {
  Escrow,
  Marketplace,
  MarketToken,
  ModelRegistry,
  ProviderRegistry,
  SessionRouter,
  Staking,
} from "../typechain-types";

const PARAMETERS_DIR = join(__dirname, "..", "ignition", "parameters");
const PARAMETER_FILES = ["localhost.json", "arbitrumSepolia.json"] as const;
const MODULES: Record<string, IgnitionModule<string, string, IgnitionModuleResult<string>>> = {
  LocalMarket: LocalMarketModule,
  InferenceMarket: InferenceMarketModule,
  TestnetMarket: TestnetMarketModule,
};
/** The parameters of `buildMarket` (ignition/modules/market.ts), which every module has. */
const MARKET_PARAMETERS = [
  "treasury",
  "unbondingPeriod",
  "providerMinStake",
  "modelMinStake",
  "maxRoyaltyBps",
  "bidFee",
  "protocolFeeBps",
  "maxSessionDuration",
  "challengeWindow",
];
const DEFAULT_ADMIN_ROLE = ethers.ZeroHash;

/**
 * Ignition's own reader of `--parameters` files (JSON5, "123n" strings as bigints), the one its CLI
 * runs. The package does not export it, so it is loaded by path.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a file the package's exports map hides
const { readDeploymentParameters } = require(
  join(dirname(require.resolve("@nomicfoundation/hardhat-ignition")), "utils", "read-deployment-parameters"),
) as { readDeploymentParameters: (path: string) => Promise<DeploymentParameters> };

async function readParameters(file: string): Promise<DeploymentParameters> {
  return readDeploymentParameters(join(PARAMETERS_DIR, file));
}

/** Every `m.getParameter` name of a module, found by walking its futures' arguments. */
function parameterNames(module: IgnitionModule): Set<string> {
  const names = new Set<string>();
  const seen = new Set<object>();
  const visit = (value: unknown): void => {
    if (typeof value !== "object" || value === null || seen.has(value)) return;
    seen.add(value);
    if (isModuleParameterRuntimeValue(value)) {
      if (value.moduleId === module.id) names.add(value.name);
      return;
    }
    const children: unknown[] = value instanceof Set || Array.isArray(value) ? [...value] : Object.values(value);
    children.forEach(visit);
  };
  module.futures.forEach(visit);
  return names;
}

/** A type, not an interface, so that it has the index signature `Record<string, …>` asks for. */
type DeployedMarket = {
  token: MarketToken;
  staking: Staking;
  providerRegistry: ProviderRegistry;
  modelRegistry: ModelRegistry;
  marketplace: Marketplace;
  sessionRouter: SessionRouter;
  escrow: Escrow;
};

/** The typed contracts of an Ignition deployment's results. */
async function typed(
  deployed: Record<keyof DeployedMarket, { getAddress(): Promise<string> }>,
): Promise<DeployedMarket> {
  const at = async <T>(name: string, contract: { getAddress(): Promise<string> }) =>
    (await ethers.getContractAt(name, await contract.getAddress())) as unknown as T;
  return {
    token: await at<MarketToken>("MarketToken", deployed.token),
    staking: await at<Staking>("Staking", deployed.staking),
    providerRegistry: await at<ProviderRegistry>("ProviderRegistry", deployed.providerRegistry),
    modelRegistry: await at<ModelRegistry>("ModelRegistry", deployed.modelRegistry),
    marketplace: await at<Marketplace>("Marketplace", deployed.marketplace),
    sessionRouter: await at<SessionRouter>("SessionRouter", deployed.sessionRouter),
    escrow: await at<Escrow>("Escrow", deployed.escrow),
  };
}

/** Each market parameter as the contracts hold it (treasury on both contracts that keep one). */
async function parametersOnChain(market: DeployedMarket): Promise<Record<string, unknown>> {
  return {
    treasury: await market.sessionRouter.treasury(),
    marketplaceTreasury: await market.marketplace.treasury(),
    unbondingPeriod: await market.staking.unbondingPeriod(),
    providerMinStake: await market.providerRegistry.providerMinStake(),
    modelMinStake: await market.modelRegistry.modelMinStake(),
    maxRoyaltyBps: await market.modelRegistry.maxRoyaltyBps(),
    bidFee: await market.marketplace.bidFee(),
    protocolFeeBps: await market.sessionRouter.protocolFeeBps(),
    maxSessionDuration: await market.sessionRouter.maxSessionDuration(),
    challengeWindow: await market.sessionRouter.challengeWindow(),
  };
}

/** Every contract points at the others as the design says. */
async function expectWired(market: DeployedMarket) {
  const [token, staking, providerRegistry, modelRegistry, marketplace, sessionRouter, escrow] = await Promise.all(
    [
      market.token,
      market.staking,
      market.providerRegistry,
      market.modelRegistry,
      market.marketplace,
      market.sessionRouter,
      market.escrow,
    ].map((contract) => contract.getAddress()),
  );
  expect(await market.staking.token()).to.equal(token);
  expect(await market.providerRegistry.staking()).to.equal(staking);
  expect(await market.providerRegistry.sessionRouter()).to.equal(sessionRouter);
  expect(await market.modelRegistry.staking()).to.equal(staking);
  expect(await market.marketplace.token()).to.equal(token);
  expect(await market.marketplace.providerRegistry()).to.equal(providerRegistry);
  expect(await market.marketplace.modelRegistry()).to.equal(modelRegistry);
  expect(await market.sessionRouter.token()).to.equal(token);
  expect(await market.sessionRouter.marketplace()).to.equal(marketplace);
  expect(await market.sessionRouter.providerRegistry()).to.equal(providerRegistry);
  expect(await market.sessionRouter.modelRegistry()).to.equal(modelRegistry);
  expect(await market.sessionRouter.escrow()).to.equal(escrow);
  expect(await market.escrow.sessionRouter()).to.equal(sessionRouter);
  expect(await market.escrow.token()).to.equal(token);
}

async function expectGovernedBy(market: DeployedMarket, governance: string) {
  for (const contract of [
    market.staking,
    market.providerRegistry,
    market.modelRegistry,
    market.marketplace,
    market.sessionRouter,
  ]) {
    expect(await contract.hasRole(DEFAULT_ADMIN_ROLE, governance)).to.equal(true);
  }
}

/** The error a promise rejects with (fails the test when it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  expect.fail("expected the promise to reject");
}

async function deployLocalMarketWithLocalhostParameters() {
  const parameters = await readParameters("localhost.json");
  const deployed = await ignition.deploy(LocalMarketModule, { parameters });
  return { parameters, market: await typed(deployed) };
}

describe("Ignition deployment", function () {
  describe("LocalMarket with ignition/parameters/localhost.json", function () {
    it("wires every contract to the others", async function () {
      const { market } = await loadFixture(deployLocalMarketWithLocalhostParameters);
      await expectWired(market);
    });

    it("sets every parameter the file names, and the treasury to the governance account by default", async function () {
      const { parameters, market } = await loadFixture(deployLocalMarketWithLocalhostParameters);
      const [governance] = await ethers.getSigners();
      const onChain = await parametersOnChain(market);
      const { fundingPerAccount: _funding, ...marketParameters } = parameters.LocalMarket;
      expect(Object.keys(marketParameters)).to.not.be.empty;
      for (const [name, value] of Object.entries(marketParameters)) {
        expect(onChain[name], name).to.equal(BigInt(value as bigint | number));
      }
      expect(onChain.treasury).to.equal(governance.address);
      expect(onChain.marketplaceTreasury).to.equal(governance.address);
      await expectGovernedBy(market, governance.address);
      expect(await market.token.owner()).to.equal(governance.address);
    });

    it("funds the first ten accounts with fundingPerAccount, and no other", async function () {
      const { parameters, market } = await loadFixture(deployLocalMarketWithLocalhostParameters);
      const funding = parameters.LocalMarket.fundingPerAccount as bigint;
      expect(funding).to.equal(1_000_000n * 10n ** 18n);
      const signers = await ethers.getSigners();
      for (const [index, signer] of signers.slice(0, 10).entries()) {
        expect(await market.token.balanceOf(signer.address), `account ${index}`).to.equal(funding);
      }
      expect(await market.token.balanceOf(signers[10].address)).to.equal(0n);
      expect(await market.token.totalSupply()).to.equal(10n * funding);
    });
  });

  describe("InferenceMarket", function () {
    async function deployAroundAnExistingToken() {
      const [governance, treasury] = await ethers.getSigners();
      const existing = await ethers.deployContract("MarketToken", [governance.address]);
      const tokenAddress = await existing.getAddress();
      const deployed = await ignition.deploy(InferenceMarketModule, {
        parameters: { InferenceMarket: { token: tokenAddress, treasury: treasury.address, protocolFeeBps: 100 } },
      });
      return { tokenAddress, governance: governance, treasury: treasury, market: await typed(deployed) };
    }

    it("deploys the market around the token given as a parameter, and mints nothing", async function () {
      const { tokenAddress, governance, treasury, market } = await loadFixture(deployAroundAnExistingToken);
      expect(await market.token.getAddress()).to.equal(tokenAddress);
      await expectWired(market);
      await expectGovernedBy(market, governance.address);
      const onChain = await parametersOnChain(market);
      expect(onChain.protocolFeeBps).to.equal(100n);
      expect(onChain.treasury).to.equal(treasury.address);
      expect(onChain.marketplaceTreasury).to.equal(treasury.address);
      // The other parameters keep the module's defaults.
      expect(onChain.challengeWindow).to.equal(3_600n);
      expect(await market.token.totalSupply()).to.equal(0n);
    });

    it("cannot deploy without the token parameter", async function () {
      const error = await rejection(ignition.deploy(InferenceMarketModule, { parameters: {} }));
      expect(error.message).to.match(/token/);
    });
  });

  describe("TestnetMarket with ignition/parameters/arbitrumSepolia.json", function () {
    it("deploys MarketToken, funds only the deployer and sets every parameter the file names", async function () {
      const parameters = await readParameters("arbitrumSepolia.json");
      const market = await typed(await ignition.deploy(TestnetMarketModule, { parameters }));
      const [deployer, other] = await ethers.getSigners();
      await expectWired(market);
      await expectGovernedBy(market, deployer.address);
      const { deployerFunding, ...marketParameters } = parameters.TestnetMarket;
      const onChain = await parametersOnChain(market);
      for (const [name, value] of Object.entries(marketParameters)) {
        expect(onChain[name], name).to.equal(BigInt(value as bigint | number));
      }
      expect(await market.token.balanceOf(deployer.address)).to.equal(deployerFunding);
      expect(await market.token.balanceOf(other.address)).to.equal(0n);
      expect(await market.token.owner()).to.equal(deployer.address);
    });
  });

  describe("an out-of-range parameter fails the deployment with the contract's error", function () {
    const cases = [
      { parameter: "protocolFeeBps", value: 5_000, error: "ProtocolFeeTooHigh(5000, 1000)", future: "SessionRouter" },
      { parameter: "maxRoyaltyBps", value: 6_000, error: "RoyaltyTooHigh(6000, 5000)", future: "ModelRegistry" },
      {
        parameter: "unbondingPeriod",
        value: 91 * 86_400,
        error: "UnbondingPeriodTooLong(7862400, 7776000)",
        future: "Staking",
      },
      { parameter: "challengeWindow", value: 59, error: "ChallengeWindowOutOfBounds(59)", future: "SessionRouter" },
    ];
    for (const { parameter, value, error, future } of cases) {
      it(`${parameter} = ${value}: ${error}`, async function () {
        const failure = await rejection(
          ignition.deploy(LocalMarketModule, { parameters: { LocalMarket: { [parameter]: value } } }),
        );
        expect(failure.message).to.contain(`LocalMarket#${future}`);
        expect(failure.message).to.contain(`custom error ${error}`);
        // The error is the contract's own, as its ABI declares it.
        const contract = await ethers.getContractFactory(future);
        expect(contract.interface.getError(error.slice(0, error.indexOf("(")))).to.not.equal(null);
      });
    }
  });

  describe("parameter files", function () {
    it("every module declares the market's parameters (and the walker finds them)", function () {
      expect([...parameterNames(LocalMarketModule)].sort()).to.deep.equal(
        [...MARKET_PARAMETERS, "fundingPerAccount"].sort(),
      );
      expect([...parameterNames(InferenceMarketModule)].sort()).to.deep.equal([...MARKET_PARAMETERS, "token"].sort());
      expect([...parameterNames(TestnetMarketModule)].sort()).to.deep.equal(
        [...MARKET_PARAMETERS, "deployerFunding"].sort(),
      );
    });

    for (const file of PARAMETER_FILES) {
      it(`${file} parses with Ignition's reader and names only parameters its modules declare`, async function () {
        const parameters = await readParameters(file);
        expect(Object.keys(parameters)).to.not.be.empty;
        for (const [moduleId, values] of Object.entries(parameters)) {
          const module = MODULES[moduleId];
          expect(module, `${file} names an unknown module ${moduleId}`).to.not.equal(undefined);
          const known = parameterNames(module);
          for (const [name, value] of Object.entries(values)) {
            expect(known.has(name), `${file}: ${moduleId} has no parameter ${name}`).to.equal(true);
            // Amounts above 2^53 must be written "123n" or Ignition refuses the file; all others are numbers.
            expect(["bigint", "number", "string"]).to.include(typeof value);
          }
        }
      });
    }
  });

  describe("protocol's loadMarketAddresses", function () {
    let dir: string;
    before(function () {
      dir = mkdtempSync(join(tmpdir(), "market-deployment-"));
    });
    after(function () {
      rmSync(dir, { recursive: true, force: true });
    });

    function write(name: string, content: string): string {
      const path = join(dir, name);
      writeFileSync(path, content);
      return path;
    }

    /** What Ignition writes: `{ "<future id>": address }` for every contract future of the module. */
    async function deployedAddressesOf(
      module: IgnitionModule<string, string, IgnitionModuleResult<string>>,
      deployed: Record<string, { getAddress(): Promise<string> }>,
    ): Promise<{ file: Record<string, string>; byResult: Record<string, string> }> {
      const file: Record<string, string> = {};
      const byResult: Record<string, string> = {};
      for (const [name, future] of Object.entries(module.results)) {
        const address = await deployed[name].getAddress();
        // Ignition writes addresses checksummed; lower case here checks that the reader normalises.
        file[future.id] = address.toLowerCase();
        byResult[name] = address;
      }
      return { file, byResult };
    }

    it("reads the deployed_addresses.json of a LocalMarket deployment", async function () {
      const { market } = await loadFixture(deployLocalMarketWithLocalhostParameters);
      const { file, byResult } = await deployedAddressesOf(LocalMarketModule, market);
      expect(Object.keys(file)).to.include.members([
        "LocalMarket#MarketToken",
        "LocalMarket#SessionRouter",
        "LocalMarket#Escrow",
      ]);
      const addresses = loadMarketAddresses(write("local.json", JSON.stringify(file, null, 2)));
      expect(addresses).to.deep.equal(byResult);
    });

    it("reads an InferenceMarket deployment, whose token is the `token` future", async function () {
      const [governance] = await ethers.getSigners();
      const existing = await ethers.deployContract("MarketToken", [governance.address]);
      const deployed = await ignition.deploy(InferenceMarketModule, {
        parameters: { InferenceMarket: { token: await existing.getAddress() } },
      });
      const { file, byResult } = await deployedAddressesOf(InferenceMarketModule, deployed);
      expect(file).to.have.property("InferenceMarket#token");
      const addresses = loadMarketAddresses(write("inference.json", JSON.stringify(file)));
      expect(addresses.token).to.equal(await existing.getAddress());
      expect(addresses).to.deep.equal(byResult);
    });

    it("names Ignition's file for a chain", function () {
      expect(deploymentFile("/repo", 31337)).to.equal(
        join("/repo", "ignition", "deployments", "chain-31337", "deployed_addresses.json"),
      );
    });

    it("rejects a missing file with DeploymentNotFoundError", function () {
      const path = join(dir, "absent.json");
      expect(() => loadMarketAddresses(path))
        .to.throw(DeploymentNotFoundError)
        .with.property("path", path);
    });

    it("rejects a file that is not JSON with InvalidDeploymentError", function () {
      const path = write("garbage.json", "LocalMarket#MarketToken = 0x5FbDB2315678afecb367f032d93F642f64180aa3");
      expect(() => loadMarketAddresses(path)).to.throw(InvalidDeploymentError, /not JSON/);
    });

    it("rejects JSON that is not an object with InvalidDeploymentError", function () {
      expect(() => loadMarketAddresses(write("null.json", "null"))).to.throw(
        InvalidDeploymentError,
        /not a JSON object/,
      );
    });

    it("rejects a file without one of the contracts, naming it", async function () {
      const { market } = await loadFixture(deployLocalMarketWithLocalhostParameters);
      const { file } = await deployedAddressesOf(LocalMarketModule, market);
      delete file["LocalMarket#Escrow"];
      expect(() => loadMarketAddresses(write("no-escrow.json", JSON.stringify(file)))).to.throw(
        InvalidDeploymentError,
        /missing or malformed address for escrow/,
      );
    });

    it("rejects a malformed address, naming the contract", async function () {
      const { market } = await loadFixture(deployLocalMarketWithLocalhostParameters);
      const { file } = await deployedAddressesOf(LocalMarketModule, market);
      file["LocalMarket#SessionRouter"] = "0x1234";
      expect(() => loadMarketAddresses(write("short.json", JSON.stringify(file)))).to.throw(
        InvalidDeploymentError,
        /missing or malformed address for sessionRouter/,
      );
    });
  });
});
