/** The journal: fsync'd appends, a torn tail after a crash, damaged lines, compaction of sessions and nonces. */
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { type SessionTerms, receiptToJson } from "../../protocol/index.js";
import { Logger, memoryDestination } from "../src/log/logger.js";
import { ApprovalLedger } from "../src/sessions/approval-ledger.js";
import { lockDataDir } from "../src/sessions/data-dir-lock.js";
import { JOURNAL_FILE, Journal, type JournalRecord, encodeJournalLine } from "../src/sessions/journal.js";
import { SessionBook } from "../src/sessions/session-book.js";

const SESSION: Hex = `0x${"aa".repeat(32)}`;
const user = privateKeyToAccount(`0x${"3".repeat(64)}`);

function terms(prices: { input: bigint; output: bigint }): SessionTerms {
  return {
    user: user.address,
    sessionKey: user.address,
    provider: user.address,
    modelId: `0x${"01".repeat(32)}`,
    nonce: 7n,
    pricePerSecond: 0n,
    pricePerInputToken: prices.input,
    pricePerOutputToken: prices.output,
    royaltyRecipient: user.address,
    royaltyBps: 0,
    feeBps: 0,
    challengeWindow: 60,
    maxDeposit: 10n ** 20n,
    openedAt: 1_000,
    maxEndsAt: 100_000,
  };
}

function receiptRecord(seq: number, inputTokens: number, outputTokens: number): JournalRecord {
  return {
    type: "receipt",
    sessionId: SESSION,
    receipt: receiptToJson({
      sessionId: SESSION,
      seq: BigInt(seq),
      inputTokens: BigInt(inputTokens),
      outputTokens: BigInt(outputTokens),
      requests: seq,
      ttftMsAvg: 0,
      tpsX1000Avg: 0,
    }),
    signature: `0x${"00".repeat(65)}`,
  };
}

async function freshDir() {
  return mkdtemp(join(tmpdir(), "agent-journal-"));
}

const quiet = () => Logger.create({ level: "silent" });

void describe("journal", () => {
  void it("reads back what was appended, concurrent appends grouped into few fsyncs", async () => {
    const dir = await freshDir();
    const { journal, records } = await Journal.open(dir, quiet());
    assert.deepEqual(records, []);
    await Promise.all(Array.from({ length: 50 }, (_, index) => journal.append(receiptRecord(index + 1, index, index))));
    await journal.close();
    const reopened = await Journal.open(dir, quiet());
    assert.equal(reopened.records.length, 50);
    assert.equal(reopened.tornTail, false);
    assert.deepEqual(reopened.records[49], receiptRecord(50, 49, 49));
    await reopened.journal.close();
  });

  void it("drops a torn last line (a crash mid-append) and appends cleanly after it", async () => {
    const dir = await freshDir();
    const path = join(dir, JOURNAL_FILE);
    const whole = encodeJournalLine(receiptRecord(1, 10, 10));
    const torn = encodeJournalLine(receiptRecord(2, 20, 20)).slice(0, 40);
    await writeFile(path, whole + torn);
    const output = memoryDestination();
    const { journal, records, tornTail } = await Journal.open(dir, Logger.create({ destination: output.write }));
    assert.equal(tornTail, true);
    assert.equal(records.length, 1);
    assert.match(output.text(), /torn line/);
    await journal.append(receiptRecord(3, 30, 30));
    await journal.close();
    assert.equal(await readFile(path, "utf8"), whole + encodeJournalLine(receiptRecord(3, 30, 30)));
  });

  void it("treats a last line with a bad checksum as torn too", async () => {
    const dir = await freshDir();
    const line = encodeJournalLine(receiptRecord(1, 10, 10));
    await writeFile(join(dir, JOURNAL_FILE), line + line.replace('"seq":"1"', '"seq":"9"'));
    const { journal, records, tornTail } = await Journal.open(dir, quiet());
    assert.equal(tornTail, true);
    assert.equal(records.length, 1);
    await journal.close();
  });

  void it("skips a damaged line in the middle, keeps the rest, and copies the file aside", async () => {
    const dir = await freshDir();
    const lines = [1, 2, 3].map((seq) => encodeJournalLine(receiptRecord(seq, seq, seq)));
    await writeFile(join(dir, JOURNAL_FILE), lines[0]! + "garbage that is no record\n" + lines[1]! + lines[2]!);
    const output = memoryDestination();
    const { journal, records, corruptLines } = await Journal.open(dir, Logger.create({ destination: output.write }));
    assert.deepEqual(corruptLines, [2]);
    assert.equal(records.length, 3);
    assert.ok((await readdir(dir)).some((name) => name.startsWith(`${JOURNAL_FILE}.corrupt-`)));
    assert.match(output.text(), /damaged lines/);
    await journal.close();
  });

  void it("rewrites atomically (compaction) and keeps appending to the new file", async () => {
    const dir = await freshDir();
    const { journal } = await Journal.open(dir, quiet());
    await journal.append(receiptRecord(1, 1, 1), receiptRecord(2, 2, 2));
    await journal.rewrite(() => [receiptRecord(2, 2, 2)]);
    await journal.append(receiptRecord(3, 3, 3));
    await journal.close();
    const { records, journal: again } = await Journal.open(dir, quiet());
    assert.deepEqual(
      records.map((record) => (record.type === "receipt" ? record.receipt.seq : "")),
      ["2", "3"],
    );
    await again.close();
  });
});

void describe("compaction while appending", () => {
  void it("keeps an append acknowledged while the snapshot is taken, and one made during the rewrite", async () => {
    const dir = await freshDir();
    const { journal } = await Journal.open(dir, quiet());
    const state: JournalRecord[] = [];
    // The caller's state changes only after its append is acknowledged (as the session book's does).
    const record = async (item: JournalRecord) => {
      await journal.append(item);
      state.push(item);
    };
    const before = record(receiptRecord(1, 1, 1));
    const rewritten = journal.rewrite(() => [...state]);
    const during = record(receiptRecord(2, 2, 2));
    await Promise.all([before, rewritten, during]);
    await journal.close();
    const { records, journal: again } = await Journal.open(dir, quiet());
    assert.deepEqual(
      records.map((item) => (item.type === "receipt" ? item.receipt.seq : "")),
      ["1", "2"],
    );
    await again.close();
  });
});

void describe("session book and approval ledger", () => {
  void it("replays receipts before the prices are known and picks the most expensive once they are", async () => {
    const dir = await freshDir();
    const { journal } = await Journal.open(dir, quiet());
    const book = new SessionBook(journal);
    book.replay([
      receiptRecord(1, 100, 0),
      receiptRecord(2, 10, 50),
      receiptRecord(3, 5, 5), // beaten by seq 2 in both: never the best
      { type: "served", sessionId: SESSION, inputTokens: "100", outputTokens: "50", requests: 3 },
      { type: "served", sessionId: SESSION, inputTokens: "90", outputTokens: "40", requests: 2 },
    ]);
    // Output tokens cost 10× input: seq 2 (10·1 + 50·10 = 510) beats seq 1 (100).
    const account = book.upsertChain({
      sessionId: SESSION,
      terms: terms({ input: 1n, output: 10n }),
      bidId: SESSION,
      deposit: 10n ** 18n,
      endsAt: 50_000,
      phase: "open",
      openedBlock: 1n,
    });
    assert.equal(account.local.best?.receipt.seq, 2n);
    assert.equal(account.lastSeq, 3n);
    assert.deepEqual(account.local.served, { inputTokens: 100n, outputTokens: 50n, requests: 3 });
    const compacted = book.compactRecords();
    assert.deepEqual(
      compacted.map((record) => record.type),
      ["served", "receipt", "receipt"],
    );
    await journal.close();
  });

  void it("forgets settled sessions at compaction", async () => {
    const dir = await freshDir();
    const { journal } = await Journal.open(dir, quiet());
    const book = new SessionBook(journal);
    book.replay([receiptRecord(1, 1, 1), { type: "settled", sessionId: SESSION }]);
    assert.deepEqual(book.compactRecords(), []);
    assert.deepEqual(book.journalOnly(), []);
    await journal.close();
  });

  void it("forgets a session settled before the cutoff, in memory, and keeps open ones and recent ones", async () => {
    const dir = await freshDir();
    const { journal } = await Journal.open(dir, quiet());
    const book = new SessionBook(journal);
    const OPEN: Hex = `0x${"bb".repeat(32)}`;
    for (const sessionId of [SESSION, OPEN]) {
      book.upsertChain({
        sessionId,
        terms: terms({ input: 1n, output: 1n }),
        bidId: SESSION,
        deposit: 10n ** 18n,
        endsAt: 50_000,
        phase: "open",
        openedBlock: 1n,
      });
    }
    await book.markSettled(SESSION);
    assert.equal(book.forgetSettled(Date.now() - 3_600_000), 0); // settled just now: kept
    assert.ok(book.get(SESSION));
    assert.equal(book.forgetSettled(Date.now() + 1), 1);
    assert.equal(book.get(SESSION), undefined);
    assert.deepEqual(
      book.all().map((account) => account.id),
      [OPEN],
    );
    await journal.close();
  });

  void it("hands out rising nonces, never below the chain's next nonce nor one already issued", async () => {
    const dir = await freshDir();
    const { journal } = await Journal.open(dir, quiet());
    const ledger = new ApprovalLedger(journal);
    ledger.initialize(5n);
    const issue = () => ledger.issue({ bidId: SESSION, user: user.address, deadline: 2_000, maxDeposit: 1n });
    assert.deepEqual([await issue(), await issue()], [5n, 6n]);
    await journal.close();

    const reopened = await Journal.open(dir, quiet());
    const again = new ApprovalLedger(reopened.journal);
    again.replay(reopened.records);
    again.initialize(3n); // the chain lags behind what was issued
    assert.equal(again.outstandingCount(1_500), 2);
    assert.equal(await again.issue({ bidId: SESSION, user: user.address, deadline: 2_000, maxDeposit: 1n }), 7n);
    again.used(5n);
    assert.equal(again.outstandingCount(1_500), 2);
    // After the deadlines only the highest nonce is kept.
    assert.deepEqual(
      again.compactRecords(3_000).map((record) => (record.type === "approval" ? record.nonce : "")),
      ["7"],
    );
    await reopened.journal.close();
  });

  void it("locks the data dir against a second agent, and takes over a dead one's lock", async () => {
    const dir = await freshDir();
    const lock = await lockDataDir(dir);
    await assert.rejects(lockDataDir(dir), /in use by process/);
    await lock.release();
    await appendFile(join(dir, "agent.lock"), "999999999\n"); // a pid that does not exist
    const taken = await lockDataDir(dir);
    await taken.release();
  });
});
