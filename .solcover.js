// solidity-coverage settings for `npm run coverage` (see scripts/check-coverage.ts for the thresholds).
// With Hardhat 2.x the instrumented build goes to the usual artifacts/ and cache/ (the next normal
// compile sees the changed settings and rebuilds), so do not run coverage and tests side by side
// in one checkout.
module.exports = {
  // Test-only contracts (mock tokens and wallets) are not part of the product; dev/MarketToken is
  // (local and testnet deployments use it), so it is measured.
  skipFiles: ["test/"],
  // The project compiles with viaIR. With irMinimum the instrumented build runs solc's Yul
  // pipeline with stack allocation and no optimizer steps: it avoids "stack too deep" without
  // paying for the full optimizer.
  irMinimum: true,
  // The invariant test replays thousands of random operations: ~40 ms each normally, ~1 s each on
  // instrumented bytecode, so it would dominate the run. `npm test` runs it; the other tests
  // exercise every line on their own.
  mocha: { grep: "invariants under random operations", invert: true },
  // json-summary feeds scripts/check-coverage.ts; html and lcov are for people and editors.
  istanbulReporter: ["text", "json-summary", "json", "html", "lcov"],
};
