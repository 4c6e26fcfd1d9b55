/**
 * `market …` (client/bin/market.mjs) or `npx tsx client/src/cli.ts …`: the command line.
 */
import { runCli } from "./cli/run.js";

const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env });
// Let stdout drain, then end even if a polling client or socket keeps the loop alive.
process.stdout.write("", () => process.exit(code));
