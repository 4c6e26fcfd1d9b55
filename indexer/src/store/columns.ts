/**
 * Column and table descriptions the write path is generic over: the change set loads, journals and
 * upserts any entity table from its description, and the TypeScript row type is derived from it,
 * so a column is declared once (the DDL lives in the versioned migrations; a test checks both agree).
 */

/** PostgreSQL types the entity tables use (what `unnest($1::<type>[])` casts to). */
export type PgType = "text" | "numeric" | "int8" | "int4" | "bool" | "float8" | "jsonb";

export interface Column<T = unknown> {
  readonly pg: PgType;
  readonly nullable: boolean;
  /** Type-level only: what a row holds in this column. */
  readonly __value?: T;
}

const column = <T>(pg: PgType) => ({ pg, nullable: false }) as Column<T>;

/** uint256 amounts and other big integers stay exact: NUMERIC in the database, decimal strings here. */
export const numeric = () => column<string>("numeric");
export const text = () => column<string>("text");
/** Block numbers, timestamps and counts (pg's int8 parser is set to return numbers: all fit 2^53). */
export const int8 = () => column<number>("int8");
export const int4 = () => column<number>("int4");
export const bool = () => column<boolean>("bool");
export const float8 = () => column<number>("float8");
export const jsonb = <T>() => column<T>("jsonb");
export const nullable = <T>(inner: Column<T>) => ({ ...inner, nullable: true }) as Column<T | null>;

export type Columns = Record<string, Column>;

/** What the generic row functions need of any table. */
export interface AnyTableSpec {
  readonly name: string;
  readonly key: readonly string[];
  readonly columns: Columns;
}

export interface TableSpec<Name extends string = string, C extends Columns = Columns> extends AnyTableSpec {
  readonly name: Name;
  /** Primary key columns, in order. */
  readonly key: readonly (keyof C & string)[];
  readonly columns: C;
}

export const table = <const Name extends string, C extends Columns>(
  name: Name,
  key: readonly (keyof C & string)[],
  columns: C,
): TableSpec<Name, C> => ({ name, key, columns });

/** The row a table holds, derived from its columns. */
export type RowOf<S extends AnyTableSpec> = {
  -readonly [K in keyof S["columns"]]: S["columns"][K] extends Column<infer T> ? T : never;
};
