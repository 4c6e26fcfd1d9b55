#!/usr/bin/env node
// The `indexer` command: runs the TypeScript CLI through tsx (ESM for the indexer, CommonJS for protocol/).
import { register as registerCommonJs } from "tsx/cjs/api";
import { register as registerEsm } from "tsx/esm/api";

registerCommonJs();
registerEsm();
await import("../src/cli.ts");
