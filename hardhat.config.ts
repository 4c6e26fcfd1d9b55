import "@nomicfoundation/hardhat-toolbox";
import { subtask, type HardhatUserConfig } from "hardhat/config";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, TASK_TEST_GET_TEST_FILES } from "hardhat/builtin-tasks/task-names";
import { join, sep } from "node:path";
import "./scripts/tasks";

const SOLC_VERSION = "0.8.28";

// Hardhat downloads its compiler from the internet; this machine (and CI) cannot reach it.
// The `solc` npm package ships the same compiler as WebAssembly, pinned to SOLC_VERSION.
subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, (args: { solcVersion: string }) => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- solc has no ESM entry
  const solc = require("solc") as { version(): string };
  const bundled = solc.version().replace(/\.Emscripten\.clang$/, "");
  if (args.solcVersion !== SOLC_VERSION || !bundled.startsWith(`${SOLC_VERSION}+`)) {
    throw new Error(
      `offline compiler mismatch: config asks for solc ${args.solcVersion}, npm package "solc" is ${bundled}; ` +
        `pin "solc" to exactly ${SOLC_VERSION} in package.json`,
    );
  }
  return Promise.resolve({
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: args.solcVersion,
    longVersion: bundled,
  });
});

// test/e2e/ is the end-to-end suite: ESM, run by Node's test runner (`npm run test:e2e`), not by
// Hardhat's CommonJS mocha. Left out of `hardhat test` (and coverage) unless named explicitly.
const E2E_TESTS = join(__dirname, "test", "e2e") + sep;
subtask(TASK_TEST_GET_TEST_FILES).setAction(async (args: { testFiles: string[] }, _hre, runSuper) => {
  const files = (await runSuper(args)) as string[];
  return args.testFiles.length > 0 ? files : files.filter((file) => !file.startsWith(E2E_TESTS));
});

const privateKey = process.env.DEPLOYER_PRIVATE_KEY;
const accounts = privateKey ? [privateKey] : [];

const config: HardhatUserConfig = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      evmVersion: "cancun",
      viaIR: true,
      optimizer: { enabled: true, runs: 1_000_000 },
    },
  },
  networks: {
    hardhat: { hardfork: "cancun" },
    // scripts/local-chain.ts points it at a node on another port (tests run several side by side).
    localhost: { url: process.env.LOCALHOST_RPC_URL ?? "http://127.0.0.1:8545" },
    arbitrumSepolia: {
      url: process.env.ARBITRUM_SEPOLIA_RPC_URL ?? "https://sepolia-rollup.arbitrum.io/rpc",
      chainId: 421614,
      accounts,
    },
  },
  etherscan: {
    apiKey: process.env.ETHERSCAN_API_KEY ?? "",
  },
  typechain: { outDir: "typechain-types", target: "ethers-v6" },
  gasReporter: { enabled: process.env.REPORT_GAS === "true", offline: true },
  mocha: { timeout: 120_000 },
};

export default config;
