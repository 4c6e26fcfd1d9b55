/**
 * Reads agent.yaml (or takes a config object in process), validates it with the schema and the
 * rules a schema cannot say (exactly one weight source per model, unique names and ids…), and
 * resolves relative paths against the config file's folder. Every mistake is reported at once,
 * each named by its path (`models[0].bid.pricePerSecond: …`).
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { type ConfigInput, type ParsedConfig, configSchema } from "./schema.js";

/** The validated config with every path absolute. */
export type AgentConfig = ParsedConfig & {
  /** The folder relative paths were resolved against. */
  baseDir: string;
};

function pathOf(path: readonly PropertyKey[]): string {
  let text = "";
  for (const part of path) {
    if (typeof part === "number") text += `[${part}]`;
    else text += text === "" ? String(part) : `.${String(part)}`;
  }
  return text === "" ? "(config)" : text;
}

function zodIssues(error: z.ZodError): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        issues.push({ path: pathOf([...issue.path, key]), message: "unknown field (check its spelling and level)" });
      }
    } else {
      issues.push({ path: pathOf(issue.path), message: issue.message });
    }
  }
  return issues;
}

/** The rules that span fields. */
function crossFieldIssues(config: ParsedConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const names = new Map<string, string>();
  const ids = new Map<string, string>();
  const claim = (kind: "name" | "id", value: string, path: string) => {
    const seen = kind === "name" ? names : ids;
    const previous = seen.get(value.toLowerCase());
    if (previous !== undefined) issues.push({ path, message: `the same ${kind} as ${previous}` });
    else seen.set(value.toLowerCase(), path);
  };

  config.models.forEach((model, index) => {
    const at = `models[${index}]`;
    claim("name", model.name, `${at}.name`);
    if (model.id) claim("id", model.id, `${at}.id`);
    const sources = [model.file, model.uri, model.upstream].filter((source) => source !== undefined);
    if (sources.length !== 1) {
      issues.push({ path: at, message: "give exactly one of file, uri or upstream" });
    }
    if (!model.id && !model.register) {
      issues.push({
        path: `${at}.id`,
        message: "give the on-chain model id, or a `register` block to register the model as the provider's own",
      });
    }
    if (model.upstream !== undefined) {
      if (!model.id && !model.sha256) {
        issues.push({
          path: `${at}.sha256`,
          message:
            "an upstream model the agent registers needs the sha256 of its GGUF (the agent cannot read the file)",
        });
      }
      if (model.adapters.length > 0) {
        issues.push({ path: `${at}.adapters`, message: "adapters are applied by the embedded engine, not upstream" });
      }
    }
    if (model.maxTokens >= model.contextSize) {
      issues.push({ path: `${at}.maxTokens`, message: `must be below contextSize (${model.contextSize})` });
    }
    model.adapters.forEach((adapter, adapterIndex) => {
      const adapterAt = `${at}.adapters[${adapterIndex}]`;
      claim("name", adapter.name, `${adapterAt}.name`);
      if (adapter.id) claim("id", adapter.id, `${adapterAt}.id`);
      if ([adapter.file, adapter.uri].filter((source) => source !== undefined).length !== 1) {
        issues.push({ path: adapterAt, message: "give exactly one of file or uri" });
      }
      if (!adapter.id && !adapter.register) {
        issues.push({
          path: `${adapterAt}.id`,
          message: "give the adapter's on-chain model id, or a `register` block to register it",
        });
      }
    });
  });

  const sources = config.keys;
  if (sources.providerKeystore && sources.providerKeyEnv !== "PROVIDER_PRIVATE_KEY") {
    issues.push({ path: "keys.providerKeystore", message: "give either providerKeyEnv or providerKeystore, not both" });
  }
  if (sources.operatorKeystore && sources.operatorKeyEnv !== "OPERATOR_PRIVATE_KEY") {
    issues.push({ path: "keys.operatorKeystore", message: "give either operatorKeyEnv or operatorKeystore, not both" });
  }
  if (config.sessions.maxAuthLifetimeSeconds < 1) {
    issues.push({ path: "sessions.maxAuthLifetimeSeconds", message: "must be at least 1" });
  }
  return issues;
}

function absolute(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

function resolvePaths(config: ParsedConfig, baseDir: string): AgentConfig {
  return {
    ...config,
    baseDir,
    dataDir: absolute(baseDir, config.dataDir),
    deployment: {
      ...config.deployment,
      ...(config.deployment.addressesFile ? { addressesFile: absolute(baseDir, config.deployment.addressesFile) } : {}),
    },
    keys: {
      ...config.keys,
      ...(config.keys.providerKeystore
        ? {
            providerKeystore: {
              ...config.keys.providerKeystore,
              path: absolute(baseDir, config.keys.providerKeystore.path),
            },
          }
        : {}),
      ...(config.keys.operatorKeystore
        ? {
            operatorKeystore: {
              ...config.keys.operatorKeystore,
              path: absolute(baseDir, config.keys.operatorKeystore.path),
            },
          }
        : {}),
    },
    models: config.models.map((model) => ({
      ...model,
      ...(model.file ? { file: absolute(baseDir, model.file) } : {}),
      adapters: model.adapters.map((adapter) => ({
        ...adapter,
        ...(adapter.file ? { file: absolute(baseDir, adapter.file) } : {}),
      })),
    })),
  };
}

/**
 * Validates a config object (as parsed from YAML, or built by a program) and resolves its relative
 * paths against `baseDir`. Throws `ConfigError` listing every issue.
 */
export function parseConfig(raw: unknown, baseDir: string, source = "config"): AgentConfig {
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(source, zodIssues(parsed.error));
  const issues = crossFieldIssues(parsed.data);
  if (issues.length > 0) throw new ConfigError(source, issues);
  return resolvePaths(parsed.data, baseDir);
}

/** Reads and validates a YAML config file. */
export function loadConfig(path: string): AgentConfig {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(file, [{ path: "(file)", message: `cannot read: ${(error as Error).message}` }]);
  }
  const document = parseDocument(text, { prettyErrors: true, intAsBigInt: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((error) => ({ path: "(yaml)", message: error.message.replace(/\s+/g, " ").trim() })),
    );
  }
  return parseConfig(safeIntegers(document.toJS({ maxAliasCount: 100 })), dirname(file), file);
}

/**
 * YAML integers are read as bigints (a large amount keeps its digits); every one that fits a JS
 * number exactly becomes a number again, so only amounts stay bigints.
 */
function safeIntegers(value: unknown): unknown {
  if (typeof value === "bigint") {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  if (Array.isArray(value)) return value.map(safeIntegers);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, safeIntegers(item)]));
  }
  return value;
}

export type { ConfigInput };
