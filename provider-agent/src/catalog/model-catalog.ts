/**
 * The models this agent serves, resolved from the config: each GGUF on disk (fetched first when the
 * config gives a URI), its sha256 (through the hash cache), and its on-chain id — the configured
 * one, or keccak256(provider, sha256) for a model the provider registers itself. Adapters carry the
 * id of the base model they apply to.
 */
import { join } from "node:path";
import type { Address, Hex } from "viem";
import { modelIdOf } from "../../../protocol/index.js";
import type { AgentConfig } from "../config/load.js";
import type { AdapterConfig, BidConfig, ModelConfig, RegistrationConfig } from "../config/schema.js";
import type { Logger } from "../log/logger.js";
import { fetchModel } from "../models/fetch-model.js";
import type { ModelHashCache } from "../models/model-hash.js";
import { createProgressReporter } from "../models/progress-reporter.js";

export interface CatalogEntry {
  /** The config's label. */
  name: string;
  /** The on-chain model id requests name. */
  id: Hex;
  /** Set for an adapter: the id of its base model. */
  baseModelId?: Hex;
  /** The GGUF on disk (absent for an upstream model). */
  path?: string;
  /** sha256 of the GGUF, 0x-hex (absent for an upstream model given by id only). */
  sha256?: Hex;
  /** Present when the provider registers (or keeps registered) this model itself. */
  registration?: RegistrationConfig & { name: string; uri: string };
  bid?: BidConfig;
  /** Where in the config it is, for messages: `models[0]`, `models[0].adapters[1]`. */
  configPath: string;
  /** Most output tokens one request may ask for. */
  maxTokens: number;
  /** The model config (for an adapter: its base model's). */
  model: ModelConfig;
  adapter?: AdapterConfig;
}

export interface PrepareCatalogOptions {
  config: AgentConfig;
  provider: Address;
  hashes: ModelHashCache;
  logger: Logger;
  /** Draw progress bars on this stream when it is a terminal (default stderr). */
  progressStream?: NodeJS.WriteStream;
  signal?: AbortSignal;
}

async function resolveFile(
  source: { file?: string | undefined; uri?: string | undefined },
  label: string,
  options: PrepareCatalogOptions,
): Promise<string | undefined> {
  if (source.file) return source.file;
  if (!source.uri) return undefined;
  const logger = options.logger;
  const reporter = createProgressReporter({
    label: `download ${label}`,
    ...(options.progressStream ? { stream: options.progressStream } : {}),
    log: (fields, message) => logger.info(fields, `model download ${message}`),
  });
  const fetched = await fetchModel({
    uri: source.uri,
    directory: join(options.config.dataDir, "models"),
    onProgress: (progress) =>
      reporter.update({
        done: progress.receivedBytes,
        ...(progress.totalBytes === undefined ? {} : { total: progress.totalBytes }),
      }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (fetched.downloaded) reporter.done();
  logger.info(
    { model: label, path: fetched.path, bytes: fetched.bytes, downloaded: fetched.downloaded },
    "model file ready",
  );
  return fetched.path;
}

async function hashOf(
  path: string | undefined,
  options: PrepareCatalogOptions,
  label: string,
): Promise<Hex | undefined> {
  if (!path) return undefined;
  const started = Date.now();
  const { sha256, cached } = await options.hashes.sha256(path);
  options.logger.info({ model: label, sha256, cached, ms: Date.now() - started }, "model file hashed");
  return `0x${sha256}`;
}

function registrationOf(
  registration: RegistrationConfig | undefined,
  name: string,
  uri: string | undefined,
): CatalogEntry["registration"] {
  if (!registration) return undefined;
  return { ...registration, name: registration.name ?? name, uri: registration.uri ?? uri ?? "" };
}

/** Fetches, hashes and names every configured model and adapter. */
export async function prepareCatalog(options: PrepareCatalogOptions): Promise<CatalogEntry[]> {
  const entries: CatalogEntry[] = [];
  for (const [index, model] of options.config.models.entries()) {
    const configPath = `models[${index}]`;
    const path = await resolveFile(model, model.name, options);
    const sha256 = (await hashOf(path, options, model.name)) ?? model.sha256;
    const id = model.id ?? modelIdOf(options.provider, sha256!);
    const registration = registrationOf(model.register, model.name, model.uri);
    entries.push({
      name: model.name,
      id,
      ...(path ? { path } : {}),
      ...(sha256 ? { sha256 } : {}),
      ...(registration ? { registration } : {}),
      ...(model.bid ? { bid: model.bid } : {}),
      configPath,
      maxTokens: model.maxTokens,
      model,
    });
    for (const [adapterIndex, adapter] of model.adapters.entries()) {
      const adapterPath = await resolveFile(adapter, adapter.name, options);
      const adapterSha = await hashOf(adapterPath, options, adapter.name);
      const adapterRegistration = registrationOf(adapter.register, adapter.name, adapter.uri);
      entries.push({
        name: adapter.name,
        id: adapter.id ?? modelIdOf(options.provider, adapterSha!),
        baseModelId: id,
        ...(adapterPath ? { path: adapterPath } : {}),
        ...(adapterSha ? { sha256: adapterSha } : {}),
        ...(adapterRegistration ? { registration: adapterRegistration } : {}),
        ...(adapter.bid ? { bid: adapter.bid } : {}),
        configPath: `${configPath}.adapters[${adapterIndex}]`,
        maxTokens: model.maxTokens,
        model,
        adapter,
      });
    }
  }
  return entries;
}
