/**
 * A query that fails never writes its parameters to the logs, and a value Postgres refuses is the
 * caller's 400, not a 500.
 *
 * The request checks in request-input.ts keep NUL bytes, broken Unicode and deep nesting away from
 * Postgres, so to reach the database's own refusal this file's database (a clone only this file
 * uses) gets a trigger that raises the SQLSTATE named in a marker, the way Postgres refuses such a
 * value: a real Postgres error, wrapped by drizzle (`DrizzleQueryError` with `query`, `params` and
 * a message holding both) exactly as in production. The trigger's `detail` echoes the row, as
 * Postgres's own details do ("Failing row contains (…)"). Every line the API writes (trace level)
 * is captured.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, jobBody, startStack } from './harness.ts';

let stack: Stack;
const lines: string[] = [];

beforeAll(async () => {
  stack = await startStack({
    startWorker: false,
    logLevel: 'trace',
    logDestination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) },
    api: { bodyLimit: '8mb' },
  });
  await stack.db.pool.query(`
    create function longhaul_test_force_sqlstate() returns trigger language plpgsql as $$
    declare
      row_text text := to_jsonb(new)::text;
      forced text[] := regexp_match(row_text, 'force-sqlstate:([0-9A-Z]{5})');
    begin
      if forced is not null then
        raise exception 'value refused for the test (%)', forced[1] using errcode = forced[1], detail = 'Failing row contains (' || row_text || ').';
      end if;
      return new;
    end $$;
    create trigger force_sqlstate before insert or update on webhook_endpoints for each row execute function longhaul_test_force_sqlstate();
    create trigger force_sqlstate before insert on jobs for each row execute function longhaul_test_force_sqlstate();
  `);
});
afterAll(async () => {
  await stack?.stop();
});

/** Every key of a serialized error and of its causes. */
function errorKeys(err: Record<string, unknown>): string[] {
  const cause = err.cause as Record<string, unknown> | undefined;
  return [...Object.keys(err), ...(cause && typeof cause === 'object' ? errorKeys(cause) : [])];
}

const settle = () => new Promise((r) => setTimeout(r, 100));

/** Lines written since `from`, and the longest of them. */
function linesSince(from: number): { text: string; longest: number; records: Array<Record<string, any>> } {
  const written = lines.slice(from);
  return { text: written.join('\n'), longest: Math.max(0, ...written.map((l) => l.length)), records: written.map((l) => JSON.parse(l)) };
}

describe('a value Postgres refuses', () => {
  it.each([
    ['22021', 'invalid_characters'],
    ['22P05', 'invalid_characters'],
    ['54001', 'request_too_complex'],
    ['22P02', 'invalid_value'],
    ['22001', 'invalid_value'],
  ])('SQLSTATE %s on webhook endpoint creation is a 400 (%s) and logs neither the new secret nor the values', async (sqlstate, code) => {
    const from = lines.length;
    const marker = `marker-${sqlstate}-${Math.random().toString(36).slice(2)}`;
    const res = await stack.api('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook', description: `force-sqlstate:${sqlstate} ${marker}` });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code, param: null });
    expect(res.body.error.message).not.toContain(marker);
    await settle();

    const { text, records } = linesSince(from);
    // The insert's parameters held the endpoint's new `whsec_…` signing secret and the description.
    expect(text).not.toContain('whsec_');
    expect(text).not.toContain(marker);
    expect(text).not.toContain('Failing row');
    expect(text).not.toMatch(/insert into/i);
    for (const r of records) if (r.err) expect(errorKeys(r.err), JSON.stringify(r.err)).not.toEqual(expect.arrayContaining([expect.stringMatching(/^(params|query|detail)$/)]));
    // One warning that says what Postgres refused, where, and which request.
    const warning = records.find((r) => r.msg === 'database refused a value of the request');
    expect(warning, text).toMatchObject({ level: 'warn', code, sqlstate, request_id: res.body.error.request_id });
    expect(warning!.err).toMatchObject({ type: 'DrizzleQueryError', cause: { code: sqlstate, severity: 'ERROR', routine: 'exec_stmt_raise' } });
    expect(records.some((r) => r.level === 'error')).toBe(false);
  });

  it('an update Postgres refuses is a 400 as well', async () => {
    const created = await stack.api('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' });
    expect(created.status).toBe(201);
    const from = lines.length;
    const res = await stack.api('PATCH', `/v1/webhook-endpoints/${created.body.id}`, { description: 'force-sqlstate:22021 patched' });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    await settle();
    const { text } = linesSince(from);
    expect(text).not.toContain(created.body.secret);
    expect(text).not.toContain('patched');
  });

  it('a 2 MB job Postgres refuses is a 400 and no log line is more than a few KB', async () => {
    const from = lines.length;
    const res = await stack.api('POST', '/v1/jobs', jobBody({ input: 'otters '.repeat(300_000), metadata: { note: 'force-sqlstate:22021' } }));
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(400);
    expect(res.body.error.code).toBe('invalid_characters');
    await settle();
    const { text, longest } = linesSince(from);
    expect(longest, text.slice(0, 2000)).toBeLessThan(4096);
    expect(text).not.toContain('otters otters');
  });

  it('a 2 MB job with a NUL in its metadata is a 400 and no log line is more than a few KB', async () => {
    const from = lines.length;
    const res = await stack.api('POST', '/v1/jobs', jobBody({ input: 'otters '.repeat(300_000), metadata: { note: 'a\u0000b' } }));
    expect(res.status, JSON.stringify(res.body).slice(0, 500)).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_characters', param: 'metadata.note' });
    await settle();
    const { longest } = linesSince(from);
    expect(longest).toBeLessThan(4096);
  });

  it('the API still answers afterwards', async () => {
    expect((await stack.api('GET', '/healthz')).status).toBe(200);
    expect((await stack.api('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook', description: 'fine' })).status).toBe(201);
  });
});

describe('recovering deliveries', () => {
  it('a `since` past the last representable date is a 400 naming it, not a 500', async () => {
    const created = await stack.api('POST', '/v1/webhook-endpoints', { url: 'http://127.0.0.1:9/hook' });
    for (const since of [1e15, Number.MAX_SAFE_INTEGER]) {
      const res = await stack.api('POST', `/v1/webhook-endpoints/${created.body.id}/recover`, { since });
      expect(res.status, `${since}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param: 'since' });
    }
  });
});
