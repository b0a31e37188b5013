/**
 * Helpers to write a drizzle row inside hand-written SQL (data-modifying CTEs), encoding every
 * value with its column's own driver mapping (jsonb, timestamps, enums) exactly as the query
 * builder would.
 */
import { getTableColumns, sql, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';

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
