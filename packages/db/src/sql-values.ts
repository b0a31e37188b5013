/**
 * Helpers to write a drizzle row inside hand-written SQL (data-modifying CTEs), encoding every
 * value with its column's own driver mapping (jsonb, timestamps, enums) exactly as the query
 * builder would.
 */
import { createHash } from 'node:crypto';
import { getTableColumns, sql, type SQL } from 'drizzle-orm';
import type { PgDialect, PgSession, PgTable } from 'drizzle-orm/pg-core';

function entries(table: PgTable, row: Record<string, unknown>) {
  const columns = getTableColumns(table) as Record<string, { name: string }>;
  return Object.entries(row)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => {
      const column = columns[key];
      if (!column) throw new Error(`unknown column ${key}`);
      return { column, value };
    });
}

/** `"col_a" = $1, "col_b" = $2` for an UPDATE. */
export function setClause(table: PgTable, row: Record<string, unknown>): SQL {
  return sql.join(
    entries(table, row).map(({ column, value }) => sql`${sql.identifier(column.name)} = ${sql.param(value, column as never)}`),
    sql`, `,
  );
}

/** `("col_a", "col_b") values ($1, $2)` for an INSERT. */
export function insertClause(table: PgTable, row: Record<string, unknown>): SQL {
  const list = entries(table, row);
  return sql`(${sql.join(
    list.map(({ column }) => sql.identifier(column.name)),
    sql`, `,
  )}) values (${sql.join(
    list.map(({ column, value }) => sql.param(value, column as never)),
    sql`, `,
  )})`;
}

/** Statement names by SQL text: one name per distinct text, so each is parsed and planned once per connection. */
const statementNames = new Map<string, string>();

/**
 * Run hand-written SQL as a named (server-side prepared) statement: Postgres parses and plans
 * it once per connection instead of on every call. For the hot statements whose text takes a
 * few shapes (a state change's columns vary with the change), never for text that embeds values.
 * Rows come back as node-postgres parses them (not mapped to drizzle's column types).
 */
export async function executePrepared<Row extends Record<string, unknown>>(db: unknown, statement: SQL): Promise<Row[]> {
  const internals = db as { dialect: PgDialect; _: { session: PgSession } };
  const query = internals.dialect.sqlToQuery(statement);
  let name = statementNames.get(query.sql);
  if (!name) {
    name = `lh_${createHash('sha1').update(query.sql).digest('hex').slice(0, 20)}`;
    if (statementNames.size < 1_000) statementNames.set(query.sql, name);
  }
  const result = (await internals._.session.prepareQuery(query, undefined, name, false).execute()) as { rows: Row[] };
  return result.rows;
}
