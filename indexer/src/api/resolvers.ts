/**
 * Resolvers: database rows (snake_case, as `store/tables.ts` types them) in, the schema's fields
 * out. Lists go through `lists.ts`, to-one relations through the request's batch loaders.
 */
import { GraphQLError, GraphQLScalarType, Kind } from "graphql";
import type { IndexerConfig } from "../config.js";
import { EARNINGS_ROLES } from "../events/handlers.js";
import { storedRankings } from "../ranking/materialized.js";
import { providerRankings } from "../ranking/rankings.js";
import type { RankedProvider } from "../ranking/score.js";
import type { ChainState } from "../store/chainState.js";
import type { Db } from "../store/database.js";
import type { FeedRow } from "../store/feed.js";
import {
  type BidRow,
  type ModelRow,
  type ProviderRow,
  type ReceiptJson,
  type SessionRow,
  emptyStake,
} from "../store/tables.js";
import { addressArg, badInput, bytes32Arg, firstArg, optionalAddressArg, optionalBytes32Arg } from "./args.js";
import {
  type BidFilter,
  type BidOrderBy,
  type ListArgs,
  type ModelFilter,
  type ModelOrderBy,
  type ProviderFilter,
  type ProviderOrderBy,
  type SessionFilter,
  type SessionOrderBy,
  listBids,
  listModels,
  listProviders,
  listSessions,
} from "./lists.js";
import type { Loaders } from "./loaders.js";
import type { FeedHub } from "./subscriptions.js";

/** What the API knows about sync: the checkpoint row and, in the writer, the live status. */
export interface SyncView {
  state: ChainState;
  head: number;
  syncing: boolean;
}

export interface ApiDeps {
  db: Db;
  config: IndexerConfig;
  feed: FeedHub;
  /** The checkpoint and head, or undefined before the first sync state exists. */
  sync(): Promise<SyncView | undefined>;
}

export interface ApiContext {
  deps: ApiDeps;
  loaders: Loaders;
}

type Args<T> = T & Record<string, unknown>;

/* SCALARS */

const bigIntScalar = new GraphQLScalarType<string, string>({
  name: "BigInt",
  description: "A large integer as a decimal string",
  serialize: (value) => String(value),
  parseValue(value) {
    if (typeof value === "string" && /^-?\d+$/.test(value)) return value;
    if (typeof value === "number" && Number.isSafeInteger(value)) return String(value);
    throw new GraphQLError(`BigInt must be a decimal integer string, got ${JSON.stringify(value)}`);
  },
  parseLiteral(ast) {
    if ((ast.kind === Kind.STRING || ast.kind === Kind.INT) && /^-?\d+$/.test(ast.value)) return ast.value;
    throw new GraphQLError("BigInt must be a decimal integer string");
  },
});

const longScalar = new GraphQLScalarType<number, number>({
  name: "Long",
  description: "A 64-bit integer as a JSON number (exact up to 2^53)",
  serialize: (value) => Number(value),
  parseValue(value) {
    if (typeof value === "number" && Number.isSafeInteger(value)) return value;
    throw new GraphQLError(`Long must be an integer, got ${JSON.stringify(value)}`);
  },
  parseLiteral(ast) {
    if (ast.kind === Kind.INT && Number.isSafeInteger(Number(ast.value))) return Number(ast.value);
    throw new GraphQLError("Long must be an integer");
  },
});

/* SHARED PIECES */

function listArgs<F, O extends string>(args: Args<Partial<ListArgs<F, O>>>, maxFirst: number): ListArgs<F, O> {
  return { ...args, first: firstArg(args.first, maxFirst) };
}

async function earningsOf(db: Db, address: string) {
  const rows = await db.selectFrom("balances").selectAll().where("account", "=", address).execute();
  const roles = EARNINGS_ROLES.flatMap((role) => {
    const row = rows.find((candidate) => candidate.role === role);
    if (row === undefined) return [];
    const earned = BigInt(row.earned);
    const claimed = BigInt(row.claimed);
    return [{ role: role.toUpperCase(), earned, claimed, claimable: earned - claimed }];
  });
  const sum = (pick: (role: (typeof roles)[number]) => bigint) => roles.reduce((total, role) => total + pick(role), 0n);
  return {
    address,
    earned: sum((role) => role.earned),
    claimed: sum((role) => role.claimed),
    claimable: sum((role) => role.claimable),
    roles,
  };
}

function settledReceipt(session: SessionRow): ReceiptJson {
  return {
    seq: session.receipt_seq ?? "0",
    inputTokens: session.input_tokens ?? "0",
    outputTokens: session.output_tokens ?? "0",
    requests: session.requests ?? 0,
    ttftMsAvg: session.ttft_ms_avg ?? 0,
    tpsX1000Avg: session.tps_x1000_avg ?? 0,
  };
}

/** The sessions under a provider, model or bid: the caller's filters plus that one. */
function sessionsUnder(
  fixed: { provider?: string; modelId?: string; bidId?: string },
  args: Args<Partial<ListArgs<SessionFilter, SessionOrderBy>>>,
  context: ApiContext,
) {
  return listSessions(context.deps.db, listArgs(args, context.deps.config.api.maxFirst), fixed);
}

/* FEED EVENTS */

function sessionMatches(where: Args<{ user?: string; provider?: string; modelId?: string }> | null | undefined) {
  const user = optionalAddressArg(where?.user, "where.user");
  const provider = optionalAddressArg(where?.provider, "where.provider");
  const modelId = optionalBytes32Arg(where?.modelId, "where.modelId");
  return (row: FeedRow) => {
    const session = row.payload.session as SessionRow;
    return (
      (user === undefined || session.user_address === user) &&
      (provider === undefined || session.provider === provider) &&
      (modelId === undefined || session.model_id === modelId)
    );
  };
}

function bidMatches(where: Args<{ provider?: string; modelId?: string }> | null | undefined) {
  const provider = optionalAddressArg(where?.provider, "where.provider");
  const modelId = optionalBytes32Arg(where?.modelId, "where.modelId");
  return (row: FeedRow) => {
    const bid = row.payload.bid as BidRow;
    return (provider === undefined || bid.provider === provider) && (modelId === undefined || bid.model_id === modelId);
  };
}

function feedEvent(row: FeedRow) {
  return {
    removed: row.removed,
    blockNumber: row.block_number,
    blockHash: row.block_hash,
    transactionHash: row.payload.transactionHash as string,
    logIndex: row.payload.logIndex as number,
    session: row.payload.session,
    bid: row.payload.bid,
    change: row.payload.change,
  };
}

/* RESOLVERS */

export const resolvers = {
  BigInt: bigIntScalar,
  Long: longScalar,

  Query: {
    async provider(_: unknown, args: Args<{ id: string }>, context: ApiContext) {
      return (await context.loaders.provider.load(addressArg(args.id, "id"))) ?? null;
    },
    providers: (_: unknown, args: Args<Partial<ListArgs<ProviderFilter, ProviderOrderBy>>>, context: ApiContext) =>
      listProviders(context.deps.db, listArgs(args, context.deps.config.api.maxFirst)),
    async model(_: unknown, args: Args<{ id: string }>, context: ApiContext) {
      return (await context.loaders.model.load(bytes32Arg(args.id, "id"))) ?? null;
    },
    models: (_: unknown, args: Args<Partial<ListArgs<ModelFilter, ModelOrderBy>>>, context: ApiContext) =>
      listModels(context.deps.db, listArgs(args, context.deps.config.api.maxFirst)),
    async bid(_: unknown, args: Args<{ id: string }>, context: ApiContext) {
      return (await context.loaders.bid.load(bytes32Arg(args.id, "id"))) ?? null;
    },
    bids: (_: unknown, args: Args<Partial<ListArgs<BidFilter, BidOrderBy>>>, context: ApiContext) =>
      listBids(context.deps.db, listArgs(args, context.deps.config.api.maxFirst)),
    async session(_: unknown, args: Args<{ id: string }>, context: ApiContext) {
      const id = bytes32Arg(args.id, "id");
      return (await context.deps.db.selectFrom("sessions").selectAll().where("id", "=", id).executeTakeFirst()) ?? null;
    },
    sessions: (_: unknown, args: Args<Partial<ListArgs<SessionFilter, SessionOrderBy>>>, context: ApiContext) =>
      listSessions(context.deps.db, listArgs(args, context.deps.config.api.maxFirst)),
    async providerRankings(
      _: unknown,
      args: Args<{ modelId: string; first?: number | null; window?: number | null }>,
      context: ApiContext,
    ) {
      const { config, db } = context.deps;
      const modelId = bytes32Arg(args.modelId, "modelId");
      const first = firstArg(args.first, config.api.maxFirst, 10);
      const windowSeconds = args.window ?? config.ranking.windowSeconds;
      if (!Number.isInteger(windowSeconds) || windowSeconds < 1 || windowSeconds > 366 * 86_400) {
        throw badInput(`window must be between 1 and ${366 * 86_400} seconds (got ${windowSeconds})`, "window");
      }
      if (windowSeconds === config.ranking.windowSeconds) {
        const stored = await storedRankings(db, modelId, first, config.ranking);
        if (stored !== undefined) return stored;
      }
      const sync = await context.deps.sync();
      const chainNow = sync?.state.indexed_timestamp ?? Math.floor(Date.now() / 1000);
      const ranked = await providerRankings(
        db,
        { modelId, windowSeconds, chainNow, wallNow: Math.floor(Date.now() / 1000) },
        config.ranking,
      );
      return ranked.slice(0, first);
    },
    earnings: (_: unknown, args: Args<{ address: string }>, context: ApiContext) =>
      earningsOf(context.deps.db, addressArg(args.address, "address")),
    parameters: (_: unknown, __: unknown, context: ApiContext) =>
      context.deps.db.selectFrom("parameters").selectAll().orderBy("contract").orderBy("name").execute(),
    async _meta(_: unknown, __: unknown, context: ApiContext) {
      const sync = await context.deps.sync();
      if (sync === undefined) throw new GraphQLError("the indexer has not started on a chain yet");
      const { state, head, syncing } = sync;
      return {
        chainId: state.chain_id,
        deploymentAddress: state.deployment_address,
        block: { number: state.indexed_number, hash: state.indexed_hash, timestamp: state.indexed_timestamp },
        finalizedBlock: state.finalized_number,
        headBlock: head,
        syncing,
        lag: Math.max(0, head - state.indexed_number),
      };
    },
  },

  Subscription: {
    sessionOpened: {
      subscribe: (_: unknown, args: Args<{ where?: Args<Record<string, string>> | null }>, context: ApiContext) =>
        context.deps.feed.subscribe("sessionOpened", sessionMatches(args.where)),
      resolve: feedEvent,
    },
    sessionSettled: {
      subscribe: (_: unknown, args: Args<{ where?: Args<Record<string, string>> | null }>, context: ApiContext) =>
        context.deps.feed.subscribe("sessionSettled", sessionMatches(args.where)),
      resolve: feedEvent,
    },
    bidChanged: {
      subscribe: (_: unknown, args: Args<{ where?: Args<Record<string, string>> | null }>, context: ApiContext) =>
        context.deps.feed.subscribe("bidChanged", bidMatches(args.where)),
      resolve: feedEvent,
    },
  },

  Provider: {
    id: (provider: ProviderRow) => provider.address,
    metadataURI: (provider: ProviderRow) => provider.metadata_uri,
    registeredBlock: (provider: ProviderRow) => provider.registered_block,
    updatedBlock: (provider: ProviderRow) => provider.updated_block,
    async stake(provider: ProviderRow, _: unknown, context: ApiContext) {
      return (await context.loaders.stake.load(provider.address)) ?? emptyStake(provider.address);
    },
    bids: (provider: ProviderRow, args: Args<Partial<ListArgs<BidFilter, BidOrderBy>>>, context: ApiContext) =>
      listBids(
        context.deps.db,
        listArgs({ ...args, where: { ...args.where, provider: provider.address } }, context.deps.config.api.maxFirst),
      ),
    sessions: (
      provider: ProviderRow,
      args: Args<Partial<ListArgs<SessionFilter, SessionOrderBy>>>,
      context: ApiContext,
    ) => sessionsUnder({ provider: provider.address }, args, context),
    async health(provider: ProviderRow, _: unknown, context: ApiContext) {
      const probe = await context.loaders.health.load(provider.address);
      return probe === undefined
        ? null
        : {
            lastProbeAt: probe.last_probe_at,
            lastOk: probe.last_ok,
            lastLatencyMs: probe.last_latency_ms,
            lastError: probe.last_error,
          };
    },
    earnings: (provider: ProviderRow, _: unknown, context: ApiContext) => earningsOf(context.deps.db, provider.address),
  },

  Stake: {
    unlockAt: (stake: { unlock_at: number }) => stake.unlock_at,
  },

  Model: {
    baseModelId: (model: ModelRow) => model.base_model_id,
    async baseModel(model: ModelRow, _: unknown, context: ApiContext) {
      return model.base_model_id === null ? null : ((await context.loaders.model.load(model.base_model_id)) ?? null);
    },
    adapters: (model: ModelRow, args: Args<Partial<ListArgs<ModelFilter, ModelOrderBy>>>, context: ApiContext) =>
      listModels(
        context.deps.db,
        listArgs({ ...args, where: { baseModelId: model.id } }, context.deps.config.api.maxFirst),
      ),
    contentHash: (model: ModelRow) => model.content_hash,
    royaltyBps: (model: ModelRow) => model.royalty_bps,
    registeredBlock: (model: ModelRow) => model.registered_block,
    updatedBlock: (model: ModelRow) => model.updated_block,
    bids: (model: ModelRow, args: Args<Partial<ListArgs<BidFilter, BidOrderBy>>>, context: ApiContext) =>
      listBids(
        context.deps.db,
        listArgs({ ...args, where: { ...args.where, modelId: model.id } }, context.deps.config.api.maxFirst),
      ),
    sessions: (model: ModelRow, args: Args<Partial<ListArgs<SessionFilter, SessionOrderBy>>>, context: ApiContext) =>
      sessionsUnder({ modelId: model.id }, args, context),
  },

  Bid: {
    providerAddress: (bid: BidRow) => bid.provider,
    async provider(bid: BidRow, _: unknown, context: ApiContext) {
      return (await context.loaders.provider.load(bid.provider)) ?? null;
    },
    modelId: (bid: BidRow) => bid.model_id,
    async model(bid: BidRow, _: unknown, context: ApiContext) {
      return (await context.loaders.model.load(bid.model_id)) ?? null;
    },
    pricePerSecond: (bid: BidRow) => bid.price_per_second,
    pricePerInputToken: (bid: BidRow) => bid.price_per_input_token,
    pricePerOutputToken: (bid: BidRow) => bid.price_per_output_token,
    feesPaid: (bid: BidRow) => bid.fees_paid,
    postedBlock: (bid: BidRow) => bid.posted_block,
    updatedBlock: (bid: BidRow) => bid.updated_block,
    sessions: (bid: BidRow, args: Args<Partial<ListArgs<SessionFilter, SessionOrderBy>>>, context: ApiContext) =>
      sessionsUnder({ bidId: bid.id }, args, context),
  },

  Session: {
    user: (session: SessionRow) => session.user_address,
    providerAddress: (session: SessionRow) => session.provider,
    async provider(session: SessionRow, _: unknown, context: ApiContext) {
      return (await context.loaders.provider.load(session.provider)) ?? null;
    },
    bidId: (session: SessionRow) => session.bid_id,
    async bid(session: SessionRow, _: unknown, context: ApiContext) {
      return (await context.loaders.bid.load(session.bid_id)) ?? null;
    },
    modelId: (session: SessionRow) => session.model_id,
    async model(session: SessionRow, _: unknown, context: ApiContext) {
      return (await context.loaders.model.load(session.model_id)) ?? null;
    },
    status: (session: SessionRow) => session.status.toUpperCase(),
    outcome: (session: SessionRow) => session.outcome?.toUpperCase() ?? null,
    toppedUp: (session: SessionRow) => session.topped_up,
    endsAt: (session: SessionRow) => session.ends_at,
    openedAt: (session: SessionRow) => session.opened_at,
    openedBlock: (session: SessionRow) => session.opened_block,
    openedTx: (session: SessionRow) => session.opened_tx,
    terms: (session: SessionRow) => ({
      user: session.user_address,
      sessionKey: session.session_key,
      provider: session.provider,
      modelId: session.model_id,
      nonce: session.nonce,
      pricePerSecond: session.price_per_second,
      pricePerInputToken: session.price_per_input_token,
      pricePerOutputToken: session.price_per_output_token,
      royaltyRecipient: session.royalty_recipient,
      royaltyBps: session.royalty_bps,
      feeBps: session.fee_bps,
      challengeWindow: session.challenge_window,
      maxDeposit: session.max_deposit,
      openedAt: session.opened_at,
      maxEndsAt: session.max_ends_at,
    }),
    closeRequest: (session: SessionRow) =>
      session.status !== "closing" || session.pending_receipt === null
        ? null
        : {
            closedBy: session.close_requested_by,
            closedAt: session.close_requested_at,
            challengeEndsAt: session.challenge_ends_at,
            receipt: session.pending_receipt,
          },
    settlement: (session: SessionRow) =>
      session.status !== "settled"
        ? null
        : {
            cost: session.cost,
            providerAmount: session.provider_amount,
            royaltyAmount: session.royalty_amount,
            feeAmount: session.fee_amount,
            refund: session.refund,
            elapsedSeconds: session.elapsed_seconds,
            treasury: session.treasury,
            receipt: settledReceipt(session),
            closedBy: session.closed_by,
            challenged: session.challenged,
            settledAt: session.settled_at,
            settledBlock: session.settled_block,
            settledTx: session.settled_tx,
          },
  },

  ProviderRanking: {
    providerAddress: (entry: RankedProvider) => entry.provider,
    async provider(entry: RankedProvider, _: unknown, context: ApiContext) {
      return (await context.loaders.provider.load(entry.provider)) ?? null;
    },
    async bid(entry: RankedProvider, _: unknown, context: ApiContext) {
      return (await context.loaders.bid.load(entry.bidId)) ?? null;
    },
  },

  Parameter: {
    updatedBlock: (parameter: { updated_block: number }) => parameter.updated_block,
  },
};
