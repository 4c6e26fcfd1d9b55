#!/usr/bin/env node
// The `provider-agent` command: the agent is TypeScript, run as is through tsx's loaders (the ESM one
// for the agent, the CommonJS one for protocol/, which the Hardhat side compiles as CommonJS).
import { register as registerCommonJs } from "tsx/cjs/api";
import { register as registerEsm } from "tsx/esm/api";

registerCommonJs();
registerEsm();
await import("../src/cli.ts");
