/** Keys from the environment or an encrypted keystore; errors that never show a key; log redaction. */
import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { encryptKeystoreJsonSync } from "ethers";
import { privateKeyToAccount } from "viem/accounts";
import { KeyError } from "../src/keys/errors.js";
import { decryptKeystore } from "../src/keys/keystore.js";
import { loadKeys, signingKey } from "../src/keys/load.js";
import { Logger, memoryDestination } from "../src/log/logger.js";

const PROVIDER_KEY = `0x${"1".repeat(64)}` as const;
const OPERATOR_KEY = `0x${"2".repeat(64)}` as const;
const provider = privateKeyToAccount(PROVIDER_KEY);
const operator = privateKeyToAccount(OPERATOR_KEY);
const sources = { providerKeyEnv: "P_KEY", operatorKeyEnv: "O_KEY" };

async function keystoreFile(privateKey: `0x${string}`, password: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "agent-keys-"));
  const path = join(dir, "keystore.json");
  const account = privateKeyToAccount(privateKey);
  // A small scrypt cost keeps the test fast; the format is the same as geth's.
  const json = encryptKeystoreJsonSync({ address: account.address, privateKey }, password, { scrypt: { N: 1024 } });
  await writeFile(path, json);
  return path;
}

void describe("keys", () => {
  void it("loads both keys from the environment; the operator signs", async () => {
    const keys = await loadKeys(sources, { P_KEY: PROVIDER_KEY, O_KEY: OPERATOR_KEY.slice(2) });
    assert.equal(keys.provider?.address, provider.address);
    assert.equal(keys.operator?.address, operator.address);
    assert.equal(keys.providerAddress, provider.address);
    assert.equal(signingKey(keys).address, operator.address);
  });

  void it("runs operator-only with the provider's address, and refuses it without", async () => {
    const keys = await loadKeys({ ...sources, providerAddress: provider.address }, { O_KEY: OPERATOR_KEY });
    assert.equal(keys.provider, undefined);
    assert.equal(keys.providerAddress, provider.address);
    await assert.rejects(
      loadKeys(sources, { O_KEY: OPERATOR_KEY }),
      /operator-only mode .* needs the provider's address/,
    );
    await assert.rejects(loadKeys(sources, {}), /no key/);
  });

  void it("refuses a malformed key without showing it", async () => {
    const bad = `0x${"zz".repeat(32)}`;
    const error = await loadKeys(sources, { P_KEY: bad }).catch((caught: unknown) => caught);
    assert.ok(error instanceof KeyError);
    assert.match(error.message, /\$P_KEY: expected a private key/);
    assert.ok(!error.message.includes(bad.slice(2)));
  });

  void it("refuses a provider address that is not the provider key's", async () => {
    await assert.rejects(
      loadKeys({ ...sources, providerAddress: operator.address }, { P_KEY: PROVIDER_KEY }),
      /keys.providerAddress/,
    );
  });

  void it("decrypts an ethers/geth keystore with the password from the environment", async () => {
    const path = await keystoreFile(PROVIDER_KEY, "correct horse");
    assert.equal(await decryptKeystore(path, "correct horse"), PROVIDER_KEY);
    const keys = await loadKeys(
      { ...sources, providerKeystore: { path, passwordEnv: "KS_PASSWORD" } },
      { KS_PASSWORD: "correct horse" },
    );
    assert.equal(keys.provider?.address, provider.address);
  });

  void it("says a keystore password is wrong or missing", async () => {
    const path = await keystoreFile(OPERATOR_KEY, "right");
    await assert.rejects(decryptKeystore(path, "wrong"), /wrong password/);
    await assert.rejects(
      loadKeys({ ...sources, operatorKeystore: { path, passwordEnv: "NOPE" } }, {}),
      /set its password in \$NOPE/,
    );
    await assert.rejects(decryptKeystore(join(tmpdir(), "no-such-keystore.json"), "x"), /cannot read the keystore/);
  });

  void it("refuses a damaged keystore as a KeyError that names the file and the field", async () => {
    const path = await keystoreFile(PROVIDER_KEY, "pw");
    // ethers writes `Crypto`, geth `crypto`.
    const keystore = JSON.parse(await readFile(path, "utf8")) as { Crypto: { kdfparams: Record<string, unknown> } };
    const damaged = async (edit: (copy: typeof keystore) => void, text?: string): Promise<KeyError> => {
      const copy = structuredClone(keystore);
      edit(copy);
      await writeFile(path, text ?? JSON.stringify(copy));
      const error = await decryptKeystore(path, "pw").catch((caught: unknown) => caught);
      assert.ok(error instanceof KeyError);
      assert.equal(error.source, path);
      return error;
    };
    const n = await damaged((copy) => (copy.Crypto.kdfparams.n = "1024"));
    assert.equal(n.message, `${path}: keystore field kdfparams.n is not a positive integer`);
    const salt = await damaged((copy) => (copy.Crypto.kdfparams.salt = "not hex"));
    assert.match(salt.message, /keystore field kdfparams\.salt is not hex/);
    const dklen = await damaged((copy) => (copy.Crypto.kdfparams.dklen = 16));
    assert.match(dklen.message, /kdfparams\.dklen is 16, below 32/);
    const notJson = await damaged(() => undefined, "{ not json");
    assert.match(notJson.message, /the keystore is not JSON/);
    const address = await damaged((copy) => Object.assign(copy, { address: operator.address }));
    assert.match(address.message, /not the keystore's address/);
  });

  void it("masks a registered secret in every log line, whatever its case or prefix", () => {
    const output = memoryDestination();
    const logger = Logger.create({ destination: output.write });
    logger.redact(PROVIDER_KEY);
    const child = logger.child({ component: "test" });
    child.info({ leaked: PROVIDER_KEY, upper: PROVIDER_KEY.toUpperCase() }, `oops ${PROVIDER_KEY.slice(2)}`);
    child.error(new Error(`failed with ${PROVIDER_KEY}`));
    assert.ok(!output.text().toLowerCase().includes(PROVIDER_KEY.slice(2)));
    assert.ok(output.text().split("[redacted]").length - 1 >= 4);
  });
});
