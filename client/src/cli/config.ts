/**
 * The CLI's settings, from flags over environment over defaults, validated with zod before anything
 * runs. Keys are never among them: see wallet/load-account.ts.
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { DEFAULT_STORE_DIR } from "../market-client.js";

export interface CliConfig {
  rpcUrl: string;
  indexerUrl: string | undefined;
  deploymentPath: string | undefined;
  storeDir: string;
  storePassword: string | undefined;
}

const url = (protocols: RegExp, expected: string) =>
  z.string().refine((value) => {
    try {
      return protocols.test(new URL(value).protocol);
    } catch {
      return false;
    }
  }, `expected ${expected}`);

const SETTINGS = {
  rpcUrl: {
    flag: "--rpc-url",
    env: "MARKET_RPC_URL",
    schema: url(/^(https?|wss?):$/, "an http(s):// or ws(s):// URL"),
  },
  indexerUrl: {
    flag: "--indexer-url",
    env: "MARKET_INDEXER_URL",
    schema: url(/^https?:$/, "an http(s):// URL (the indexer's /graphql)"),
  },
  deploymentPath: { flag: "--deployment", env: "MARKET_DEPLOYMENT", schema: z.string().min(1, "expected a file path") },
  storeDir: { flag: "--store-dir", env: "MARKET_STORE_DIR", schema: z.string().min(1, "expected a directory") },
  storePassword: {
    flag: undefined,
    env: "MARKET_STORE_PASSWORD",
    schema: z.string().min(8, "use at least 8 characters"),
  },
} as const;

export const DEFAULT_RPC_URL = "http://127.0.0.1:8545";

export function loadCliConfig(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): CliConfig {
  const pick = (name: keyof typeof SETTINGS): string | undefined => {
    const setting = SETTINGS[name];
    const flagName = setting.flag?.slice(2);
    const fromFlag = flagName === undefined ? undefined : flags[flagName];
    const raw = typeof fromFlag === "string" ? fromFlag : env[setting.env];
    if (raw === undefined || raw === "") return undefined;
    const parsed = setting.schema.safeParse(raw);
    if (!parsed.success) {
      const source = typeof fromFlag === "string" ? setting.flag! : setting.env;
      throw new ConfigError(source, `${JSON.stringify(raw)}: ${parsed.error.issues[0]?.message ?? "invalid"}`, {
        hint: setting.flag ? `fix ${setting.flag} or ${setting.env}` : `fix ${setting.env}`,
      });
    }
    return parsed.data;
  };
  return {
    rpcUrl: pick("rpcUrl") ?? DEFAULT_RPC_URL,
    indexerUrl: pick("indexerUrl"),
    deploymentPath: pick("deploymentPath"),
    storeDir: pick("storeDir") ?? DEFAULT_STORE_DIR,
    storePassword: pick("storePassword"),
  };
}
