#!/usr/bin/env node
// The `market` command: the client is TypeScript, run as is through tsx's loader.
import { register } from "tsx/esm/api";

register();
await import("../src/cli.ts");
