#!/usr/bin/env node
// The `market` command: the client is TypeScript, run as is through tsx's loaders (ESM for the
// client, CommonJS for the protocol/ files it shares with the Hardhat side).
import { register as registerCommonJs } from "tsx/cjs/api";
import { register as registerEsm } from "tsx/esm/api";

registerCommonJs();
registerEsm();
await import("../src/cli.ts");
