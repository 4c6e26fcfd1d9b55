/**
 * The list queries behind `providers`, `models`, `bids` and `sessions` (and the same lists under a
 * provider, model or bid): filters, sort keys and pagination, all through Kysely.
 */
import { sql } from "kysely";
import type { Db } from "../store/database.js";
import type { BidRow, ModelRow, ProviderRow, SessionRow } from "../store/tables.js";
import { addressArg, badInput, optionalAddressArg, optionalBytes32Arg } from "./args.js";
import { type Direction, type Page, type SortKey, paginate } from "./pagination.js";

export interface ListArgs<Filter, OrderBy extends string> {
  where?: Filter | null;
  orderBy?: OrderBy | null;
  orderDirection?: Direction | null;
  first: number;
  after?: string | null;
}

const column = (name: string, type: SortKey["type"]): SortKey => ({ expression: sql.ref(name), type });

/* PROVIDERS */

export interface ProviderFilter {
  active?: boolean | null;
  operator?: string | null;
  address_in?: string[] | null;
}
export type ProviderOrderBy = "registeredBlock" | "updatedBlock" | "address";
const providerSort: Record<ProviderOrderBy, SortKey> = {
  registeredBlock: column("registered_block", "int8"),
  updatedBlock: column("updated_block", "int8"),
  address: column("address", "text"),
};

export async function listProviders(
  db: Db,
  args: ListArgs<ProviderFilter, ProviderOrderBy>,
): Promise<Page<ProviderRow>> {
  const where = args.where ?? {};
  let query = db.selectFrom("providers").selectAll();
  if (where.active != null) query = query.where("active", "=", where.active);
  const operator = optionalAddressArg(where.operator, "where.operator");
  if (operator !== undefined) query = query.where("operator", "=", operator);
  if (where.address_in != null) {
    const addresses = where.address_in.map((address) => addressArg(address, "where.address_in"));
    if (addresses.length === 0) return { items: [], pageInfo: { hasNextPage: false, endCursor: null } };
    query = query.where("address", "in", addresses);
  }
  return paginate(query, {
    sort: providerSort[args.orderBy ?? "registeredBlock"],
    idColumn: "address",
    direction: args.orderDirection ?? "asc",
    first: args.first,
    after: args.after,
  });
}

/* MODELS */

export interface ModelFilter {
  owner?: string | null;
  active?: boolean | null;
  baseModelId?: string | null;
  isAdapter?: boolean | null;
  tag?: string | null;
}
export type ModelOrderBy = "registeredBlock" | "updatedBlock" | "name";
const modelSort: Record<ModelOrderBy, SortKey> = {
  registeredBlock: column("registered_block", "int8"),
  updatedBlock: column("updated_block", "int8"),
  name: column("name", "text"),
};

export async function listModels(db: Db, args: ListArgs<ModelFilter, ModelOrderBy>): Promise<Page<ModelRow>> {
  const where = args.where ?? {};
  let query = db.selectFrom("models").selectAll();
  const owner = optionalAddressArg(where.owner, "where.owner");
  if (owner !== undefined) query = query.where("owner", "=", owner);
  if (where.active != null) query = query.where("active", "=", where.active);
  const base = optionalBytes32Arg(where.baseModelId, "where.baseModelId");
  if (base !== undefined) query = query.where("base_model_id", "=", base);
  if (where.isAdapter != null) {
    query = query.where("base_model_id", where.isAdapter ? "is not" : "is", null);
  }
  if (where.tag != null) query = query.where(sql<boolean>`tags ? ${where.tag}`);
  return paginate(query, {
    sort: modelSort[args.orderBy ?? "registeredBlock"],
    idColumn: "id",
    direction: args.orderDirection ?? "asc",
    first: args.first,
    after: args.after,
  });
}

/* BIDS */

export interface BidFilter {
  provider?: string | null;
  modelId?: string | null;
  active?: boolean | null;
}
export type BidOrderBy =
  "updatedBlock" | "postedBlock" | "pricePerSecond" | "pricePerInputToken" | "pricePerOutputToken";
const bidSort: Record<BidOrderBy, SortKey> = {
  updatedBlock: column("updated_block", "int8"),
  postedBlock: column("posted_block", "int8"),
  pricePerSecond: column("price_per_second", "numeric"),
  pricePerInputToken: column("price_per_input_token", "numeric"),
  pricePerOutputToken: column("price_per_output_token", "numeric"),
};

export async function listBids(db: Db, args: ListArgs<BidFilter, BidOrderBy>): Promise<Page<BidRow>> {
  const where = args.where ?? {};
  let query = db.selectFrom("bids").selectAll();
  const provider = optionalAddressArg(where.provider, "where.provider");
  if (provider !== undefined) query = query.where("provider", "=", provider);
  const modelId = optionalBytes32Arg(where.modelId, "where.modelId");
  if (modelId !== undefined) query = query.where("model_id", "=", modelId);
  if (where.active != null) query = query.where("active", "=", where.active);
  return paginate(query, {
    sort: bidSort[args.orderBy ?? "updatedBlock"],
    idColumn: "id",
    direction: args.orderDirection ?? "asc",
    first: args.first,
    after: args.after,
  });
}

/* SESSIONS */

export type SessionStatusName = "OPEN" | "CLOSING" | "SETTLED";
export type SessionOutcomeName = "SUCCESS" | "FAILURE" | "UNRATED";

export interface SessionFilter {
  user?: string | null;
  provider?: string | null;
  modelId?: string | null;
  bidId?: string | null;
  status?: SessionStatusName | null;
  status_in?: SessionStatusName[] | null;
  outcome?: SessionOutcomeName | null;
  openedAfter?: number | null;
  openedBefore?: number | null;
  settledAfter?: number | null;
  settledBefore?: number | null;
}
export type SessionOrderBy = "openedAt" | "settledAt" | "cost" | "deposit";
// Unsettled sessions sort as if settled at time -1 and for cost -1: first ascending, last descending.
const sessionSort: Record<SessionOrderBy, SortKey> = {
  openedAt: column("opened_at", "int8"),
  settledAt: { expression: sql`coalesce(settled_at, -1)`, type: "int8" },
  cost: { expression: sql`coalesce(cost, -1)`, type: "numeric" },
  deposit: column("deposit", "numeric"),
};

const timeBound = (value: number | null | undefined, argument: string) => {
  if (value === null || value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) throw badInput(`${argument} must be unix seconds`, argument);
  return value;
};

export async function listSessions(
  db: Db,
  args: ListArgs<SessionFilter, SessionOrderBy>,
  fixed: { provider?: string; modelId?: string; bidId?: string } = {},
): Promise<Page<SessionRow>> {
  const where = args.where ?? {};
  let query = db.selectFrom("sessions").selectAll();
  const user = optionalAddressArg(where.user, "where.user");
  if (user !== undefined) query = query.where("user_address", "=", user);
  const provider = optionalAddressArg(where.provider, "where.provider");
  if (provider !== undefined) query = query.where("provider", "=", provider);
  const modelId = optionalBytes32Arg(where.modelId, "where.modelId");
  if (modelId !== undefined) query = query.where("model_id", "=", modelId);
  const bidId = optionalBytes32Arg(where.bidId, "where.bidId");
  if (bidId !== undefined) query = query.where("bid_id", "=", bidId);
  // The list under a provider, model or bid: its own filters and the caller's, together.
  if (fixed.provider !== undefined) query = query.where("provider", "=", fixed.provider);
  if (fixed.modelId !== undefined) query = query.where("model_id", "=", fixed.modelId);
  if (fixed.bidId !== undefined) query = query.where("bid_id", "=", fixed.bidId);
  if (where.status != null) query = query.where("status", "=", where.status.toLowerCase());
  if (where.status_in != null) {
    if (where.status_in.length === 0) return { items: [], pageInfo: { hasNextPage: false, endCursor: null } };
    query = query.where(
      "status",
      "in",
      where.status_in.map((status) => status.toLowerCase()),
    );
  }
  if (where.outcome != null) query = query.where("outcome", "=", where.outcome.toLowerCase());
  const openedAfter = timeBound(where.openedAfter, "where.openedAfter");
  if (openedAfter !== undefined) query = query.where("opened_at", ">=", openedAfter);
  const openedBefore = timeBound(where.openedBefore, "where.openedBefore");
  if (openedBefore !== undefined) query = query.where("opened_at", "<", openedBefore);
  const settledAfter = timeBound(where.settledAfter, "where.settledAfter");
  if (settledAfter !== undefined) query = query.where("settled_at", ">=", settledAfter);
  const settledBefore = timeBound(where.settledBefore, "where.settledBefore");
  if (settledBefore !== undefined) query = query.where("settled_at", "<", settledBefore);
  return paginate(query, {
    sort: sessionSort[args.orderBy ?? "openedAt"],
    idColumn: "id",
    direction: args.orderDirection ?? "asc",
    first: args.first,
    after: args.after,
  });
}
