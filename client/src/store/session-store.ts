/**
 * The local session store: a directory per wallet, one JSON file per session (named by its
 * session key), each written atomically. Session keys are sealed with AES-256-GCM under the
 * store's key (`encryption.ts`); the store's own file holds the KDF parameters and a check value,
 * never a key.
 *
 *   <dir>/<user address>/store.json
 *   <dir>/<user address>/sessions/<session key address>.json
 *
 * Writes to one session are serialized within the process; one session should be used by one
 * process at a time (its receipts' `seq` is the process's count).
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { type Address, type Hex, getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { SessionNotFoundError, SessionStoreError } from "../errors.js";
import { writeFileAtomic } from "./atomic-write.js";
import {
  type ScryptParameters,
  type StoreSecret,
  deriveStoreKey,
  newScryptParameters,
  open,
  seal,
} from "./encryption.js";
import { type SessionRecord, parseSessionRecord } from "./session-record.js";

const STORE_VERSION = 1;
const CHECK_PLAINTEXT = "inference-market session store";

interface StoreFile {
  version: typeof STORE_VERSION;
  user: Address;
  secret: StoreSecret["kind"];
  kdf: ScryptParameters & { name: "scrypt" };
  /** CHECK_PLAINTEXT sealed under the store's key: tells a wrong secret from a damaged file. */
  check: ReturnType<typeof seal>;
}

export interface SessionStoreOptions {
  /** The store's root directory (a subdirectory per wallet is made below it). */
  dir: string;
  user: Address;
  /** Asked once, the first time a session key is sealed or unsealed. */
  secret: () => Promise<StoreSecret>;
}

export class SessionStore {
  readonly root: string;
  readonly user: Address;
  private readonly sessionsDir: string;
  private key: Promise<Buffer> | undefined;
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(private readonly options: SessionStoreOptions) {
    this.user = getAddress(options.user);
    this.root = join(options.dir, this.user);
    this.sessionsDir = join(this.root, "sessions");
  }

  /** Seals a session key's private key; the record names its address, which the seal authenticates. */
  async sealSessionKey(privateKey: Hex): Promise<{ address: Address; sealed: ReturnType<typeof seal> }> {
    const address = privateKeyToAccount(privateKey).address;
    const key = await this.unlock();
    return { address, sealed: seal(key, Buffer.from(privateKey.slice(2), "hex"), aad(this.options.user, address)) };
  }

  /** The private key of a record's session key. */
  async unsealSessionKey(record: SessionRecord): Promise<Hex> {
    if (record.sessionKey.sealed === undefined) {
      throw new SessionStoreError(
        `the key of session ${record.sessionId ?? record.sessionKey.address} is not in this store`,
        {
          hint: "it was rebuilt from the chain after the store was lost: it can be closed (time only), not used",
        },
      );
    }
    const sealed = record.sessionKey.sealed;
    const key = await this.unlock();
    let plaintext: Buffer;
    try {
      plaintext = open(key, sealed, aad(this.options.user, record.sessionKey.address));
    } catch (error) {
      throw new SessionStoreError(`the session key ${record.sessionKey.address} cannot be decrypted`, {
        cause: error,
        hint: "its file was altered or belongs to another store",
      });
    }
    const privateKey: Hex = `0x${plaintext.toString("hex")}`;
    if (privateKeyToAccount(privateKey).address !== record.sessionKey.address) {
      throw new SessionStoreError(`the session key file ${record.sessionKey.address} holds another key`);
    }
    return privateKey;
  }

  /** Writes a new record (fails if one exists for its session key). */
  async create(record: SessionRecord): Promise<SessionRecord> {
    return this.exclusive(record.sessionKey.address, async () => {
      if ((await this.read(record.sessionKey.address)) !== undefined) {
        throw new SessionStoreError(`a session record for key ${record.sessionKey.address} exists already`);
      }
      await this.write(record);
      return record;
    });
  }

  /** Reads, changes and writes one record, serialized with every other change to it. */
  async update(sessionKey: Address, change: (record: SessionRecord) => SessionRecord): Promise<SessionRecord> {
    return this.exclusive(sessionKey, async () => {
      const current = await this.read(sessionKey);
      if (current === undefined) throw new SessionNotFoundError(sessionKey, `in the store ${this.root}`);
      const next = parseSessionRecord(change(structuredClone(current)));
      await this.write(next);
      return next;
    });
  }

  async get(sessionKey: Address): Promise<SessionRecord | undefined> {
    return this.read(getAddress(sessionKey));
  }

  /** Every record in the store, oldest first. */
  async list(): Promise<SessionRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.sessionsDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw new SessionStoreError(`cannot list ${this.sessionsDir}: ${(error as Error).message}`, { cause: error });
    }
    const records: SessionRecord[] = [];
    for (const name of names) {
      if (!/^0x[0-9a-fA-F]{40}\.json$/.test(name)) continue;
      const record = await this.read(getAddress(name.slice(0, 42)));
      if (record) records.push(record);
    }
    return records.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The record of a session id, or of a unique prefix of one (as the CLI accepts). */
  async findBySessionId(sessionId: string): Promise<SessionRecord | undefined> {
    const wanted = sessionId.toLowerCase();
    const matches = (await this.list()).filter(
      (record) => record.sessionId !== undefined && record.sessionId.toLowerCase().startsWith(wanted),
    );
    if (matches.length > 1) {
      throw new SessionStoreError(`${sessionId} matches ${matches.length} sessions`, { hint: "give more of the id" });
    }
    return matches[0];
  }

  private pathOf(sessionKey: Address): string {
    return join(this.sessionsDir, `${getAddress(sessionKey)}.json`);
  }

  private async read(sessionKey: Address): Promise<SessionRecord | undefined> {
    const path = this.pathOf(sessionKey);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw new SessionStoreError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
    }
    try {
      return parseSessionRecord(JSON.parse(text));
    } catch (error) {
      throw new SessionStoreError(`${path} is not a valid session record: ${(error as Error).message}`, {
        cause: error,
        hint: "move the file away; the session can be rebuilt from the indexer (`market sessions --recover`)",
      });
    }
  }

  private async write(record: SessionRecord): Promise<void> {
    await writeFileAtomic(this.pathOf(record.sessionKey.address), `${JSON.stringify(record, null, 2)}\n`);
  }

  private async exclusive<T>(sessionKey: Address, task: () => Promise<T>): Promise<T> {
    const id = getAddress(sessionKey);
    const previous = this.queues.get(id) ?? Promise.resolve();
    const next = previous.then(task, task);
    const settled = next.catch(() => undefined);
    this.queues.set(id, settled);
    void settled.then(() => {
      if (this.queues.get(id) === settled) this.queues.delete(id);
    });
    return next;
  }

  /** The store's key: read (or create) store.json, derive, check. Once per store object. */
  private unlock(): Promise<Buffer> {
    this.key ??= this.deriveKey().catch((error: unknown) => {
      this.key = undefined;
      throw error;
    });
    return this.key;
  }

  private async deriveKey(): Promise<Buffer> {
    const path = join(this.root, "store.json");
    const secret = await this.options.secret();
    const material = secret.kind === "password" ? secret.password : Buffer.from(secret.signature.slice(2), "hex");
    let text: string | undefined;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new SessionStoreError(`cannot read ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    if (text === undefined) {
      const kdf = newScryptParameters();
      const key = await deriveStoreKey(material, kdf);
      const file: StoreFile = {
        version: STORE_VERSION,
        user: getAddress(this.options.user),
        secret: secret.kind,
        kdf: { name: "scrypt", ...kdf },
        check: seal(key, Buffer.from(CHECK_PLAINTEXT), aad(this.options.user, "check")),
      };
      await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
      return key;
    }
    const raw = JSON.parse(text) as { version?: unknown; kdf?: { name?: unknown } };
    if (raw.version !== STORE_VERSION || raw.kdf?.name !== "scrypt") {
      throw new SessionStoreError(`${path}: unknown store version ${String(raw.version)}`);
    }
    const file = raw as StoreFile;
    if (file.secret !== secret.kind) {
      throw new SessionStoreError(
        `the store ${this.root} is encrypted with ${file.secret === "password" ? "a password" : "a key derived from the wallet's signature"}`,
        {
          hint:
            file.secret === "password"
              ? "set MARKET_STORE_PASSWORD to the password it was created with"
              : "unset MARKET_STORE_PASSWORD: this store's key comes from the wallet",
        },
      );
    }
    const key = await deriveStoreKey(material, file.kdf);
    try {
      open(key, file.check, aad(this.options.user, "check"));
    } catch {
      throw new SessionStoreError(`cannot unlock the session store ${this.root}: wrong key`, {
        hint:
          file.secret === "password"
            ? "MARKET_STORE_PASSWORD is not the password this store was created with"
            : "this store was created by another wallet key",
      });
    }
    return key;
  }
}

function aad(user: Address, what: string): string {
  return `inference-market/v${STORE_VERSION}/${getAddress(user)}/${what}`;
}
