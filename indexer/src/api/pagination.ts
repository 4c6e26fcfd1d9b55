/**
 * Keyset (cursor) pagination over any ordered list: the cursor is the last item's sort value and
 * id, so a page is `WHERE (sort, id) > (cursor) ORDER BY sort, id LIMIT first + 1` — stable while
 * rows are added, and as fast on page 1,000 as on page 1.
 */
import { type Expression, type RawBuilder, type SelectQueryBuilder, sql } from "kysely";
import { badInput } from "./args.js";

export interface PageInfo {
  hasNextPage: boolean;
  endCursor: string | null;
}

export interface Page<T> {
  items: T[];
  pageInfo: PageInfo;
}

/** How a list is sorted: an SQL expression over the row, of a PostgreSQL type, never null. */
export interface SortKey {
  expression: RawBuilder<unknown>;
  type: "numeric" | "int8" | "text";
}

export type Direction = "asc" | "desc";

export function encodeCursor(value: string, id: string): string {
  return Buffer.from(JSON.stringify([value, id])).toString("base64url");
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    const decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(decoded) && decoded.length === 2 && decoded.every((part) => typeof part === "string")) {
      return decoded as [string, string];
    }
  } catch {
    // fall through to the error below
  }
  throw badInput(`after is not a cursor this API issued: "${cursor}"`, "after");
}

/**
 * One page of `query`, sorted by `sort` then `idColumn` in `direction`, after `after`.
 * `query` must select the table's columns; the sort value rides along as `_sort`.
 */
export async function paginate<DB, TB extends keyof DB, O extends Record<string, unknown>>(
  query: SelectQueryBuilder<DB, TB, O>,
  options: { sort: SortKey; idColumn: string; direction: Direction; first: number; after?: string | null },
): Promise<Page<O>> {
  const { sort, idColumn, direction, first, after } = options;
  const id = sql.ref(idColumn);
  let page = query.select(sql<string>`(${sort.expression})::text`.as("_sort"));
  if (after !== undefined && after !== null) {
    const [value, lastId] = decodeCursor(after);
    if (sort.type !== "text" && !/^-?\d+(\.\d+)?$/.test(value)) throw badInput("after is not a valid cursor", "after");
    const comparison = direction === "asc" ? sql`>` : sql`<`;
    page = page.where(
      sql<boolean>`(${sort.expression}, ${id}) ${comparison} (${value}::${sql.raw(sort.type)}, ${lastId})` as Expression<boolean>,
    );
  }
  const rows = (await page
    .orderBy(sql`${sort.expression} ${sql.raw(direction)}`)
    .orderBy(sql`${id} ${sql.raw(direction)}`)
    .limit(first + 1)
    .execute()) as (O & { _sort: string })[];
  const items = rows.slice(0, first);
  const last = items.at(-1);
  return {
    items,
    pageInfo: {
      hasNextPage: rows.length > first,
      endCursor: last === undefined ? null : encodeCursor(last._sort, String(last[idColumn as keyof typeof last])),
    },
  };
}
