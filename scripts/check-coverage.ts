/**
 * Reads the report of `hardhat coverage` and fails (exit 1) when the contracts' coverage is under
 * the thresholds. Run by `npm run coverage` after solidity-coverage.
 *
 * Measured: every file under contracts/ except contracts/test/ (mocks that only tests deploy;
 * .solcover.js skips them too). contracts/dev/MarketToken.sol is measured: local and testnet
 * deployments use it. Interfaces hold no executable code and add nothing to the totals.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";

const THRESHOLDS = { lines: 95, branches: 90 } as const;

const root = join(__dirname, "..");
const SUMMARY_FILE = join(root, "coverage", "coverage-summary.json");
const RAW_FILE = join(root, "coverage.json");

const METRICS = ["lines", "branches", "functions", "statements"] as const;
type Metric = (typeof METRICS)[number];
interface Count {
  covered: number;
  total: number;
}
type FileCounts = Record<Metric, Count>;

/** istanbul's json-summary: `{ total: …, "<path>": { lines: { total, covered, … }, … } }`. */
type Summary = Record<string, Record<Metric, Count>>;

/** istanbul's raw per-file coverage (coverage.json), the parts needed to count. */
interface RawFileCoverage {
  l?: Record<string, number>;
  statementMap: Record<string, { start: { line: number } }>;
  s: Record<string, number>;
  f: Record<string, number>;
  b: Record<string, number[]>;
}

function fromSummary(summary: Summary): Map<string, FileCounts> {
  const files = new Map<string, FileCounts>();
  for (const [path, entry] of Object.entries(summary)) {
    if (path === "total") continue;
    files.set(path, {
      lines: pick(entry.lines),
      branches: pick(entry.branches),
      functions: pick(entry.functions),
      statements: pick(entry.statements),
    });
  }
  return files;
}

function pick(count: Count): Count {
  return { covered: count.covered, total: count.total };
}

/**
 * The counts istanbul's summary gives: lines from the line map solidity-coverage writes (`l`),
 * else a line is covered when any statement that starts on it ran.
 */
function fromRaw(raw: Record<string, RawFileCoverage>): Map<string, FileCounts> {
  const files = new Map<string, FileCounts>();
  for (const [path, file] of Object.entries(raw)) {
    const lineHits = new Map<number, number>();
    if (file.l) {
      for (const [line, hits] of Object.entries(file.l)) lineHits.set(Number(line), hits);
    } else {
      for (const [id, statement] of Object.entries(file.statementMap)) {
        const line = statement.start.line;
        lineHits.set(line, Math.max(lineHits.get(line) ?? 0, file.s[id] ?? 0));
      }
    }
    const branchHits = Object.values(file.b).flat();
    const count = (hits: Iterable<number>): Count => {
      const all = [...hits];
      return { covered: all.filter((hit) => hit > 0).length, total: all.length };
    };
    files.set(path, {
      lines: count(lineHits.values()),
      branches: count(branchHits),
      functions: count(Object.values(file.f)),
      statements: count(Object.values(file.s)),
    });
  }
  return files;
}

function load(): { source: string; files: Map<string, FileCounts> } {
  if (existsSync(SUMMARY_FILE)) {
    return { source: SUMMARY_FILE, files: fromSummary(JSON.parse(readFileSync(SUMMARY_FILE, "utf8")) as Summary) };
  }
  if (existsSync(RAW_FILE)) {
    const raw = JSON.parse(readFileSync(RAW_FILE, "utf8")) as Record<string, RawFileCoverage>;
    return { source: RAW_FILE, files: fromRaw(raw) };
  }
  throw new Error(`no coverage report: neither ${SUMMARY_FILE} nor ${RAW_FILE} exists; run \`npm run coverage\``);
}

/** `contracts/…` for a report path (istanbul writes absolute paths), or undefined outside contracts/. */
function contractPath(path: string): string | undefined {
  const fromRoot = relative(root, path).split(sep).join("/");
  const name = fromRoot.startsWith("..") ? path.split(sep).join("/") : fromRoot;
  const at = name.indexOf("contracts/");
  if (at === -1) return undefined;
  const inContracts = name.slice(at);
  return inContracts.startsWith("contracts/test/") ? undefined : inContracts;
}

const percent = (count: Count) => (count.total === 0 ? 100 : (100 * count.covered) / count.total);
const format = (count: Count) => `${percent(count).toFixed(2).padStart(6)}% (${count.covered}/${count.total})`;

function main(): number {
  const { source, files } = load();
  const totals: FileCounts = {
    lines: { covered: 0, total: 0 },
    branches: { covered: 0, total: 0 },
    functions: { covered: 0, total: 0 },
    statements: { covered: 0, total: 0 },
  };
  const measured: [string, FileCounts][] = [];
  for (const [path, counts] of files) {
    const name = contractPath(path);
    if (name === undefined) continue;
    measured.push([name, counts]);
    for (const metric of METRICS) {
      totals[metric].covered += counts[metric].covered;
      totals[metric].total += counts[metric].total;
    }
  }
  if (measured.length === 0) throw new Error(`${source} names no file under contracts/`);

  console.log(`Contract coverage (contracts/, without contracts/test/), from ${relative(root, source)}:`);
  for (const metric of METRICS) console.log(`  ${metric.padEnd(10)} ${format(totals[metric])}`);

  let failed = false;
  for (const [metric, minimum] of Object.entries(THRESHOLDS) as [Metric, number][]) {
    if (percent(totals[metric]) < minimum) {
      failed = true;
      console.error(`FAIL: ${metric} coverage ${percent(totals[metric]).toFixed(2)}% is under ${minimum}%`);
      const weakest = measured
        .filter(([, counts]) => percent(counts[metric]) < minimum)
        .sort(([, a], [, b]) => percent(a[metric]) - percent(b[metric]));
      for (const [name, counts] of weakest) console.error(`  ${name}: ${metric} ${format(counts[metric])}`);
    }
  }
  if (!failed) console.log(`OK: lines ≥ ${THRESHOLDS.lines}%, branches ≥ ${THRESHOLDS.branches}%`);
  return failed ? 1 : 0;
}

process.exitCode = main();
