/**
 * Helpers to write a drizzle row inside hand-written SQL (data-modifying CTEs), encoding every
 * value with its column's own driver mapping (jsonb, timestamps, enums) exactly as the query
 * builder would.
 */
import { createHash } from 'node:crypto';
import { type Query, getTableColumns, sql, type SQL } from 'drizzle-orm';
import { PgDialect, type PgSession, type PgTable } from 'drizzle-orm/pg-core';

/** A column's driver encoding for a placeholder value, passing null through (drizzle encodes a placeholder's value even when null). */
function nullSafe(column: unknown): { mapToDriverValue(value: unknown): unknown } {
  const encoder = column as { mapToDriverValue(value: unknown): unknown };
  return { mapToDriverValue: (value) => (value === null ? null : encoder.mapToDriverValue(value)) };
}

/** `"col_a" = $1, "col_b" = $2` for an UPDATE of `keys`, each value the placeholder `<prefix><key>`, encoded as its column. */
export function setPlaceholders(table: PgTable, keys: readonly string[], prefix: string): SQL {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  return sql.join(
    keys.map((key) => {
      const column = columns[key];
      if (!column) throw new Error(`unknown column ${key}`);
      return sql`${sql.identifier(column.name)} = ${sql.param(sql.placeholder(`${prefix}${key}`), nullSafe(column))}`;
    }),
    sql`, `,
  );
}

/** `("col_a", "col_b") values ($1, $2)` for an INSERT of `keys`, each value the placeholder `<prefix><key>`, encoded as its column. */
export function insertPlaceholders(table: PgTable, keys: readonly string[], prefix: string): SQL {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  const list = keys.map((key) => {
    const column = columns[key];
    if (!column) throw new Error(`unknown column ${key}`);
    return { key, column };
  });
  return sql`(${sql.join(
    list.map(({ column }) => sql.identifier(column.name)),
    sql`, `,
  )}) values (${sql.join(
    list.map(({ key, column }) => sql.param(sql.placeholder(`${prefix}${key}`), nullSafe(column))),
    sql`, `,
  )})`;
}

/** Prefix `values`' keys, for the placeholders of setPlaceholders / insertPlaceholders. */
export function prefixed(values: Record<string, unknown>, prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(values)) if (values[key] !== undefined) out[`${prefix}${key}`] = values[key];
  return out;
}

const dialect = new PgDialect();

interface CompiledVariant {
  query: Query;
  name: string;
  prepared: WeakMap<object, { execute(values: Record<string, unknown>): Promise<unknown> }>;
}

/**
 * A hot hand-written statement built once per shape instead of on every call: `build(shape)`
 * gives its SQL with placeholders (`sql.placeholder`, or setPlaceholders / insertPlaceholders for
 * column-typed values), compiled to text once and run as a named statement (parsed and planned
 * once per connection), each call only filling in values. drizzle's query building was a third
 * of a state change's CPU in the worker and the API. `shape` names what varies in the text (the
 * columns a state change sets); a few shapes each, `''` for a statement whose text never varies.
 */
export function compiledStatement<Row extends Record<string, unknown>>(build: (shape: string) => SQL) {
  const variants = new Map<string, CompiledVariant>();
  return async (db: unknown, shape: string, values: Record<string, unknown>): Promise<Row[]> => {
    let variant = variants.get(shape);
    if (!variant) {
      const query = dialect.sqlToQuery(build(shape));
      variant = { query, name: `lh_${createHash('sha1').update(query.sql).digest('hex').slice(0, 20)}`, prepared: new WeakMap() };
      if (variants.size < 100) variants.set(shape, variant);
    }
    // Per database handle (the pool, or a transaction's client).
    const key = db as object;
    let prepared = variant.prepared.get(key);
    if (!prepared) {
      prepared = (db as { _: { session: PgSession } })._.session.prepareQuery(variant.query, undefined, variant.name, false);
      variant.prepared.set(key, prepared);
    }
    const result = (await prepared.execute(values)) as { rows: Row[] };
    return result.rows;
  };
}
