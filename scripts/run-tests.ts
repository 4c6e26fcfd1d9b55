/**
 * `npm test`: compiles, then runs every suite in order and closes with one line,
 * `tests: N passed, N failed`.
 *
 *   npm test                     every suite
 *   npm test -- agent indexer    only these suites (names below)
 *
 * The contracts' suite runs on Hardhat's mocha; the services' suites on Node's test runner, one
 * file at a time. Every suite runs even when an earlier one fails, so one run shows every failure;
 * the exit code is non-zero when any test failed, a suite crashed, or a suite ran no test at all.
 */
import { spawn } from "node:child_process";

interface Suite {
  name: string;
  /** The package.json script that runs it. */
  script: string;
}

const SUITES: readonly Suite[] = [
  { name: "contracts", script: "test:contracts" },
  { name: "agent", script: "test:agent" },
  { name: "indexer", script: "test:indexer" },
  { name: "client", script: "test:client" },
  { name: "e2e", script: "test:e2e" },
];

interface SuiteResult {
  suite: Suite;
  passed: number;
  failed: number;
  exitCode: number | null;
  seconds: number;
}

// mocha: "  367 passing (2m)", "  2 failing"; node:test (spec reporter): "ℹ pass 151", "ℹ fail 0".
const COUNTERS: readonly { pattern: RegExp; field: "passed" | "failed" }[] = [
  { pattern: /^\s*(\d+) passing\b/, field: "passed" },
  { pattern: /^\s*(\d+) failing\b/, field: "failed" },
  { pattern: /^ℹ pass (\d+)$/, field: "passed" },
  { pattern: /^ℹ fail (\d+)$/, field: "failed" },
];

/** Runs `npm run <script>`, echoing its output while counting the runners' closing lines. */
function run(script: string, onLine: (line: string) => void = () => undefined): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["run", "--silent", script], { stdio: ["ignore", "pipe", "pipe"] });
    let pending = "";
    const scan = (chunk: Buffer, sink: NodeJS.WriteStream) => {
      sink.write(chunk);
      const lines = (pending + chunk.toString("utf8")).split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) onLine(line);
    };
    child.stdout.on("data", (chunk: Buffer) => scan(chunk, process.stdout));
    child.stderr.on("data", (chunk: Buffer) => scan(chunk, process.stderr));
    child.once("error", reject);
    child.once("exit", (code) => {
      if (pending) onLine(pending);
      resolve(code);
    });
  });
}

/** Test runners colour their output on a terminal; the counters read plain text. */
// eslint-disable-next-line no-control-regex -- the escape character is what is matched
const stripColours = (line: string) => line.replace(/\x1b\[[0-9;]*m/g, "");

async function runSuite(suite: Suite): Promise<SuiteResult> {
  const started = Date.now();
  const result: SuiteResult = { suite, passed: 0, failed: 0, exitCode: null, seconds: 0 };
  console.log(`\n=== ${suite.name} (npm run ${suite.script})`);
  result.exitCode = await run(suite.script, (line) => {
    for (const { pattern, field } of COUNTERS) {
      const match = pattern.exec(stripColours(line));
      if (match?.[1] !== undefined) result[field] += Number(match[1]);
    }
  });
  result.seconds = Math.round((Date.now() - started) / 1000);
  return result;
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((name) => !SUITES.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    console.error(`unknown suite ${unknown.join(", ")}: choose from ${SUITES.map((suite) => suite.name).join(", ")}`);
    process.exit(2);
  }
  const suites = wanted.length === 0 ? SUITES : SUITES.filter((suite) => wanted.includes(suite.name));

  console.log("=== compile (npm run compile; the first run takes a minute or two)");
  if ((await run("compile")) !== 0) {
    console.error("compile failed: no test ran");
    process.exit(1);
  }

  const results: SuiteResult[] = [];
  for (const suite of suites) results.push(await runSuite(suite));

  console.log("\n=== summary");
  let ok = true;
  for (const { suite, passed, failed, exitCode, seconds } of results) {
    const problem =
      exitCode !== 0 && failed === 0
        ? ` (exited ${exitCode ?? "on a signal"} without a failing test: see its output)`
        : passed + failed === 0
          ? " (ran no test)"
          : "";
    if (failed > 0 || problem) ok = false;
    console.log(`${suite.name.padEnd(10)} ${passed} passed, ${failed} failed in ${seconds} s${problem}`);
  }
  const passed = results.reduce((sum, result) => sum + result.passed, 0);
  const failed = results.reduce((sum, result) => sum + result.failed, 0);
  console.log(`tests: ${passed} passed, ${failed} failed`);
  process.exit(ok ? 0 : 1);
}

void main();
