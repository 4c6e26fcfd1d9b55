import { formatAmount, parseAmount, parseDuration } from "../../chain/amounts.js";
import { InvalidArgumentError } from "../../errors.js";
import { type MarketSession, sessionFromRecord } from "../../session/market-session.js";
import type { SessionRecord } from "../../store/session-record.js";
import { positiveInteger, resolveModel } from "../arguments.js";
import type { Command } from "../command.js";
import { fields, table, time } from "../output.js";

/** Sessions that still have at least this long to run are reused by `chat`. */
const REUSE_MARGIN_SECONDS = 60;

export const chatCommand: Command = {
  words: ["chat"],
  arguments: "<model> <prompt>",
  summary: "ask a model; streams the answer (opens a session, or reuses an open one)",
  options: {
    deposit: { type: "string", description: "deposit of a new session (default 1)", placeholder: "AMOUNT" },
    "max-duration": { type: "string", description: "longest a new session runs (default 1h)", placeholder: "DURATION" },
    "max-tokens": { type: "string", description: "most tokens in the answer (default 256)", placeholder: "N" },
    system: { type: "string", description: "a system prompt", placeholder: "TEXT" },
    new: { type: "boolean", description: "open a new session even if one is open" },
  },
  positionals: { min: 2, max: 2 },
  wallet: "required",
  async run({ market, output, positionals, values }) {
    const client = await market();
    const [modelText, prompt] = positionals as [string, string];
    if (prompt.trim() === "") throw new InvalidArgumentError("prompt", "is empty");
    const maxTokens = positiveInteger(values["max-tokens"], "max-tokens", 256);
    const deposit = parseAmount(
      typeof values.deposit === "string" ? values.deposit : "1",
      client.token.decimals,
      "--deposit",
    );
    const maxDuration = parseDuration(
      typeof values["max-duration"] === "string" ? values["max-duration"] : "1h",
      "--max-duration",
    );
    const modelId = await resolveModel(client, modelText);

    let session: MarketSession | undefined;
    let reused = false;
    if (values.new !== true) {
      const now = Date.now() / 1000;
      const open = (await client.sessions()).filter(
        (record) =>
          record.phase === "open" &&
          record.modelId.toLowerCase() === modelId.toLowerCase() &&
          record.sessionKey.sealed !== undefined &&
          (record.endsAt ?? 0) > now + REUSE_MARGIN_SECONDS,
      );
      const newest = open.at(-1);
      if (newest) {
        session = sessionFromRecord(newest);
        reused = true;
        output.note(output.dim(`reusing session ${session.id} (${session.endpoint})`));
      }
    }
    if (!session) {
      const opened = await client.openSession({ modelId, deposit, maxDuration });
      session = opened.session;
      for (const skip of opened.skipped) output.note(output.dim(`skipped bid ${skip.bidId}: ${skip.reason}`));
      output.note(
        output.dim(
          `opened session ${session.id} with ${formatAmount(session.deposit, client.token)} at ${session.endpoint}`,
        ),
      );
    }
    const openai = client.chat(session);
    const messages = [
      ...(typeof values.system === "string" ? [{ role: "system" as const, content: values.system }] : []),
      { role: "user" as const, content: prompt },
    ];
    const stream = await openai.chat.completions.create({
      model: modelId,
      messages,
      max_completion_tokens: maxTokens,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta.content ?? "";
      text += delta;
      if (!output.json) output.write(delta);
    }
    if (!output.json) output.write("\n");
    await client.flushReceipts(session);
    const receipt = (await client.status(session)).record.receipts.latest?.receipt;
    output.result({ sessionId: session.id, reused, text, receipt }, () =>
      output.dim(
        `session ${session.id}: ${receipt ? `receipt #${receipt.seq}, ${receipt.outputTokens} tokens out in all` : "no receipt"}`,
      ),
    );
  },
};

function describeRecord(record: SessionRecord) {
  return record.sessionId ?? `(key ${record.sessionKey.address})`;
}

export const sessionsCommand: Command = {
  words: ["sessions"],
  arguments: "",
  summary: "the wallet's sessions in the local store (checked against the chain)",
  options: {
    recover: { type: "string", description: "rebuild a session missing from the store, by id", placeholder: "ID" },
  },
  positionals: { min: 0, max: 0 },
  wallet: "required",
  async run({ market, output, values }) {
    const client = await market();
    if (typeof values.recover === "string") {
      if (!/^0x[0-9a-fA-F]{64}$/.test(values.recover))
        throw new InvalidArgumentError("--recover", "expected a session id (32 bytes of 0x-hex)");
      const rebuilt = await client.rebuildSession(values.recover as `0x${string}`);
      output.note(
        `rebuilt session ${rebuilt.id} (${rebuilt.phase}); its key was not in the store, so it can be closed on time only`,
      );
    }
    const records = await client.sessions();
    output.result(records, () =>
      records.length === 0
        ? "no sessions"
        : table(
            ["session", "phase", "deposit", "ends", "receipt", "provider"],
            records.map((record) => [
              describeRecord(record),
              record.phase,
              formatAmount(BigInt(record.deposit), client.token),
              record.endsAt === undefined ? "-" : time(record.endsAt),
              record.receipts.latest ? `#${record.receipts.latest.receipt.seq}` : "-",
              record.endpoint,
            ]),
          ),
    );
  },
};

export const closeCommand: Command = {
  words: ["close"],
  arguments: "<session id>",
  summary: "close a session: settles at once with the agent's countersignature, else after the challenge window",
  options: { alone: { type: "boolean", description: "close without asking the agent (opens the challenge window)" } },
  positionals: { min: 1, max: 1 },
  wallet: "required",
  async run({ market, output, positionals, values }) {
    const client = await market();
    const id = positionals[0]!;
    if (!/^0x[0-9a-fA-F]{4,64}$/.test(id))
      throw new InvalidArgumentError("session id", `${id} is not a session id (or a prefix of one)`);
    const closed = await client.closeSession(id as `0x${string}`, { cooperative: values.alone !== true });
    output.result(closed, () => {
      if (closed.outcome === "closing") {
        return [
          `session ${closed.sessionId} is closing: ${closed.reason}`,
          `the challenge window ends ${time(closed.challengeEndsAt)}; then run \`market close ${closed.sessionId}\` again for the refund`,
        ].join("\n");
      }
      const settlement = closed.settlement;
      return [
        `session ${closed.sessionId} settled${closed.cooperative ? " (cooperative close)" : ""}`,
        fields([
          ["cost", formatAmount(BigInt(settlement.cost), client.token)],
          ["refund", formatAmount(BigInt(settlement.refund), client.token)],
          ["challenged", settlement.challenged],
        ]),
      ].join("\n");
    });
  },
};

export const topUpCommand: Command = {
  words: ["topup"],
  arguments: "<session id> <amount>",
  summary: "add to an open session's deposit (and so its time)",
  positionals: { min: 2, max: 2 },
  wallet: "required",
  async run({ market, output, positionals }) {
    const client = await market();
    const [id, text] = positionals as [string, string];
    const amount = parseAmount(text, client.token.decimals, "amount");
    const topped = await client.topUp(id as `0x${string}`, amount);
    output.result(
      topped,
      () =>
        `deposit now ${formatAmount(topped.deposit, client.token)}, ends ${time(topped.endsAt)} (tx ${topped.txHash})`,
    );
  },
};

export const statusCommand: Command = {
  words: ["status"],
  arguments: "<session id>",
  summary: "a session's state on chain, at the agent and in the store",
  positionals: { min: 1, max: 1 },
  wallet: "required",
  async run({ market, output, positionals }) {
    const client = await market();
    const status = await client.status(positionals[0] as `0x${string}`);
    const amount = (value: bigint | string) => formatAmount(BigInt(value), client.token);
    output.result(status, () =>
      [
        output.bold(`session ${status.sessionId ?? status.record.sessionKey.address}`),
        fields([
          ["phase (store)", status.record.phase],
          ["on chain", status.chain?.status ?? "-"],
          ["deposit", status.chain ? amount(status.chain.deposit) : "-"],
          ["ends", status.chain ? time(status.chain.endsAt) : "-"],
          ["latest receipt", status.record.receipts.latest ? `#${status.record.receipts.latest.receipt.seq}` : "-"],
          ["agent: cost so far", status.agent ? amount(status.agent.usage.cost) : (status.agentError ?? "-")],
          ["agent: deposit left", status.agent ? amount(status.agent.usage.depositLeft) : "-"],
        ]),
      ].join("\n"),
    );
  },
};
