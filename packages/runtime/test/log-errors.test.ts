import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createLogger } from '../src/logger.ts';
import { MESSAGE_LIMIT, serializeError } from '../src/log-errors.ts';

const SECRET = 'whsec_c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1iZS1sb2dnZWQ=';

/** The shape of pg's DatabaseError: every field enumerable, `detail` echoing the row. */
function pgError(code = '22021'): Error {
  const err = new Error('invalid byte sequence for encoding "UTF8": 0x00') as Error & Record<string, unknown>;
  err.name = 'error';
  Object.assign(err, {
    length: 120,
    severity: 'ERROR',
    code,
    detail: `Failing row contains (we_1, ${SECRET}).`,
    hint: undefined,
    position: undefined,
    internalQuery: `select '${SECRET}'`,
    where: `JSON data, line 1: {"secret":"${SECRET}`,
    schema: 'public',
    table: 'webhook_endpoints',
    column: 'description',
    dataType: undefined,
    constraint: 'webhook_endpoints_pkey',
    file: 'mbutils.c',
    line: '1665',
    routine: 'report_invalid_encoding',
  });
  return err;
}

/** The shape of drizzle-orm's DrizzleQueryError (errors.js): message = statement + every parameter. */
class DrizzleQueryError extends Error {
  constructor(
    public query: string,
    public params: unknown[],
    public override cause?: unknown,
  ) {
    super(`Failed query: ${query}\nparams: ${params}`);
    Error.captureStackTrace(this, DrizzleQueryError);
  }
}

function failedInsert(extra = ''): DrizzleQueryError {
  return new DrizzleQueryError('insert into "webhook_endpoints" ("id", "secrets") values ($1, $2)', ['we_1', JSON.stringify([{ secret: SECRET }]), extra], pgError());
}

describe('serializeError', () => {
  it('keeps what identifies a failed query and none of its parameters', () => {
    const out = serializeError(failedInsert()) as Record<string, any>;
    const text = JSON.stringify(out);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('insert into');
    expect(out).toMatchObject({ type: 'DrizzleQueryError', message: 'Failed query (statement and parameters not logged)' });
    expect(out.omitted).toEqual(expect.arrayContaining(['query', 'params']));
    expect(out.stack).toMatch(/^DrizzleQueryError: Failed query \(statement and parameters not logged\)\n\s+at /);
    expect(out.cause).toMatchObject({
      type: 'Error',
      name: 'error',
      message: 'invalid byte sequence for encoding "UTF8": 0x00',
      code: '22021',
      severity: 'ERROR',
      routine: 'report_invalid_encoding',
      table: 'webhook_endpoints',
      column: 'description',
      constraint: 'webhook_endpoints_pkey',
      schema: 'public',
    });
    expect(out.cause.omitted).toEqual(expect.arrayContaining(['detail', 'internalQuery', 'where']));
  });

  it('caps the message and rebuilds the stack from frames under the capped message', () => {
    const huge = 'x'.repeat(2_000_000);
    const out = serializeError(new Error(huge)) as Record<string, any>;
    expect(out.message.length).toBeLessThan(MESSAGE_LIMIT + 64);
    expect(out.message).toMatch(/… \[1997952 more characters\]$/);
    expect(out.stack.length).toBeLessThan(MESSAGE_LIMIT + 4_096);
    expect(
      out.stack
        .split('\n')
        .slice(1)
        .every((l: string) => /^\s+(at |…)/.test(l)),
    ).toBe(true);
    // A huge query in a drizzle error: neither the message nor the stack carries it.
    expect(JSON.stringify(serializeError(failedInsert(huge))).length).toBeLessThan(6_000);
  });

  it('keeps small scalar fields and drops objects, long strings and data-bearing names', () => {
    const err = Object.assign(new Error('boom'), {
      code: 'E_THING',
      status: 400,
      retryable: false,
      param: 'metadata.note',
      long: 'y'.repeat(1_000),
      nested: { secret: SECRET },
      body: 'short but request data',
      headers: { authorization: 'Bearer x' },
    });
    const out = serializeError(err) as Record<string, any>;
    expect(out).toMatchObject({ type: 'Error', message: 'boom', code: 'E_THING', status: 400, retryable: false, param: 'metadata.note' });
    expect(out.omitted.sort()).toEqual(['body', 'headers', 'long', 'nested']);
    expect(JSON.stringify(out)).not.toContain(SECRET);
  });

  it('follows causes to a bounded depth and stops at a cycle', () => {
    let err: Error = new Error('root');
    for (let i = 0; i < 20; i++) err = new Error(`level ${i}`, { cause: err });
    let out = serializeError(err) as Record<string, any>;
    let depth = 0;
    while (typeof out.cause === 'object') {
      out = out.cause;
      depth++;
    }
    expect(depth).toBe(5);
    expect(out.cause).toBe('[more causes not logged]');
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect((serializeError(a) as any).cause.cause).toBe('[circular]');
  });

  it('is the same through pino-http, which runs the standard serializer first', () => {
    const wrapped = pino.stdSerializers.wrapErrorSerializer(serializeError as (e: any) => any);
    const out = wrapped(failedInsert() as any) as Record<string, any>;
    expect(JSON.stringify(out)).not.toContain(SECRET);
    expect(out.message).toBe('Failed query (statement and parameters not logged)');
  });

  it('writes non-errors without their properties', () => {
    expect(serializeError({ secret: SECRET })).toEqual({ type: 'Object', message: '[not an error; its properties are not logged]' });
    expect(serializeError('z'.repeat(10_000))).toHaveLength(MESSAGE_LIMIT + ' [7952 more characters]'.length + 1);
    expect(serializeError(null)).toBe(null);
  });
});

describe('createLogger', () => {
  function capture() {
    const lines: string[] = [];
    const logger = createLogger({ service: 'test', level: 'trace', destination: { write: (chunk: string) => void lines.push(...chunk.split('\n').filter(Boolean)) } });
    return { logger, lines };
  }

  it('never writes a failed query, however the error is logged', () => {
    const { logger, lines } = capture();
    const err = failedInsert('p'.repeat(2_000_000));
    logger.error({ err }, 'unhandled error');
    logger.error(err);
    logger.warn({ err });
    logger.warn({ error: err, cause: err, other: err }, 'as other keys');
    logger.child({ request_id: 'r1' }).error({ err }, 'from a child');
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain('insert into');
      expect(line.length).toBeLessThan(8_192);
    }
    const records = lines.map((l) => JSON.parse(l));
    expect(records[1].msg).toBe('Failed query (statement and parameters not logged)');
    expect(records[2].msg).toBe('Failed query (statement and parameters not logged)');
    expect(records[3].other.cause.code).toBe('22021');
  });

  it('cuts long fields, bindings and messages', () => {
    const { logger, lines } = capture();
    const long = 'q'.repeat(100_000);
    logger.child({ webhook_id: long }).warn({ param: long, nested: { short: 'ok' } }, long);
    logger.info(long);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.length).toBeLessThan(8_192);
    const first = JSON.parse(lines[0]!);
    expect(first.param).toMatch(/^q+… \[97952 more characters\]$/);
    expect(first.webhook_id).toMatch(/more characters\]$/);
    expect(first.msg).toMatch(/more characters\]$/);
    expect(first.nested).toEqual({ short: 'ok' });
  });
});
