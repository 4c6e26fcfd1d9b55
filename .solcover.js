// solidity-coverage settings for `npm run coverage` (see scripts/check-coverage.ts for the thresholds).
module.exports = {
  // Test-only contracts (mock tokens and wallets) are not part of the product; dev/MarketToken is
  // (local and testnet deployments use it), so it is measured.
  skipFiles: ["test/"],
  // The project compiles with viaIR. With irMinimum the instrumented build runs solc's Yul
  // pipeline with stack allocation and no optimizer steps: it avoids "stack too deep" without
  // paying for the full optimizer.
  irMinimum: true,
  // json-summary feeds scripts/check-coverage.ts; html and lcov are for people and editors.
  istanbulReporter: ["text", "json-summary", "json", "html", "lcov"],
};
