#!/usr/bin/env node
// The `provider-agent` command: the agent is TypeScript, run as is through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
