import type { IncomingHttpHeaders } from 'node:http';
import OpenAI from 'openai';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { responseSchemaErrors, sleep, specSchemaErrors, startReceiver, startSim, type TestSim, type WebhookReceiver } from './helpers.ts';
import { refedTimeouts } from './timers.ts';

const SECRET = `whsec_${Buffer.from('longhaul-simulator-batch-secret-32b').toString('base64')}`;
const BATCH_TERMINAL = new Set(['completed', 'failed', 'expired', 'cancelled']);

let sim: TestSim;
let receiver: WebhookReceiver;
let baselineTimers: number;

beforeEach(async () => {
  baselineTimers = refedTimeouts();
  receiver = await startReceiver();
  // 0.001: a batch of 300 s simulated takes 300 ms: 15 validating, 255 in_progress, 30 finalizing.
  sim = await startSim({ time_scale: 0.001, batch_duration_ms: 300_000, webhook_urls: [receiver.url], webhook_secret: SECRET });
});
afterEach(async () => {
  await sim.close();
  await receiver.close();
  expect(refedTimeouts()).toBeLessThanOrEqual(baselineTimers);
});

interface Line {
  custom_id: string;
  method?: string;
  url?: string;
  body: Record<string, unknown>;
}

const line = (customId: string, body: Record<string, unknown> = {}): Line => ({
  custom_id: customId,
  method: 'POST',
  url: '/v1/responses',
  body: { model: 'gpt-5-mini', input: `question ${customId}`, ...body },
});

async function uploadJsonl(rows: Array<Line | string>, purpose: 'batch' | 'user_data' = 'batch'): Promise<string> {
  const text = rows.map((row) => (typeof row === 'string' ? row : JSON.stringify(row))).join('\n');
  const file = await sim.client.files.create({ file: await OpenAI.toFile(Buffer.from(`${text}\n`), 'requests.jsonl'), purpose });
  return file.id;
}

async function createBatch(rows: Array<Line | string>, metadata?: Record<string, string>): Promise<OpenAI.Batches.Batch> {
  const inputFileId = await uploadJsonl(rows);
  return sim.client.batches.create({ input_file_id: inputFileId, endpoint: '/v1/responses', completion_window: '24h', ...(metadata ? { metadata } : {}) });
}

/** Polls over raw HTTP until terminal, validating every state against the spec's Batch schema. */
async function pollBatch(id: string): Promise<any[]> {
  const seen: any[] = [];
  for (let i = 0; i < 2000; i++) {
    const { status, json } = await sim.api(`/batches/${id}`);
    if (status !== 200) throw new Error(`retrieve answered ${status}: ${JSON.stringify(json)}`);
    const errors = specSchemaErrors('Batch', json);
    if (errors !== null) throw new Error(`invalid Batch (${json.status}): ${errors}`);
    seen.push(json);
    if (BATCH_TERMINAL.has(json.status)) return seen;
    await sleep(3);
  }
  throw new Error(`batch ${id} never reached a terminal state`);
}

async function fileLines(id: string | undefined): Promise<any[]> {
  if (id === undefined) return [];
  const content = await sim.client.files.content(id);
  return (await content.text())
    .split('\n')
    .filter((row) => row !== '')
    .map((row) => JSON.parse(row));
}

function statusPath(seen: any[]): string[] {
  return seen.map((batch) => batch.status as string).filter((status, index, all) => index === 0 || all[index - 1] !== status);
}

describe('batch lifecycle', () => {
  test('validating → in_progress → finalizing → completed, with counts, timestamps and per-line results', async () => {
    // 1 s: 50 ms validating, 850 ms in progress, 100 ms finalizing, so a poll sees every state.
    await sim.sim('/config', { batch_duration_ms: 1_000_000 });
    const created = await createBatch(
      [line('ok-1', { metadata: { longhaul_note: 'x' } }), line('fails', { metadata: { sim_outcome: 'failed' } }), line('bad', { temperature: 5 }), line('ok-2')],
      { purpose: 'nightly' },
    );
    expect(created).toMatchObject({ object: 'batch', status: 'validating', endpoint: '/v1/responses', completion_window: '24h', metadata: { purpose: 'nightly' } });
    expect(created.id).toMatch(/^batch_[0-9a-f]{48}$/);
    expect(created.request_counts).toEqual({ total: 0, completed: 0, failed: 0 });
    expect(created.output_file_id).toBeUndefined();
    expect(specSchemaErrors('Batch', created)).toBeNull();

    const seen = await pollBatch(created.id);
    expect(statusPath([created, ...seen])).toEqual(['validating', 'in_progress', 'finalizing', 'completed']);
    const counts = seen.filter((batch) => batch.status === 'in_progress').map((batch) => batch.request_counts.completed + batch.request_counts.failed);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));

    const done = await sim.client.batches.retrieve(created.id);
    expect(done.request_counts).toEqual({ total: 4, completed: 2, failed: 2 });
    expect(done.model).toBe('gpt-5-mini');
    const times = [done.created_at, done.in_progress_at, done.finalizing_at, done.completed_at];
    expect(times.every((t) => Number.isInteger(t))).toBe(true);
    expect(times).toEqual([...times].sort((a, b) => (a as number) - (b as number)));
    // The 24 h window, scaled: 86.4 s after creation.
    expect((done.expires_at as number) - done.created_at).toBeGreaterThanOrEqual(86);
    expect((done.expires_at as number) - done.created_at).toBeLessThanOrEqual(87);
    expect(done.usage?.total_tokens).toBeGreaterThan(0);

    const output = await fileLines(done.output_file_id);
    expect(output.map((row) => row.custom_id)).toEqual(['ok-1', 'ok-2']);
    for (const row of output) {
      expect(row).toMatchObject({ id: expect.stringMatching(/^batch_req_[0-9a-f]{32}$/), error: null, response: { status_code: 200, request_id: expect.stringMatching(/^req_/) } });
      expect(responseSchemaErrors(row.response.body)).toBeNull();
      expect(row.response.body).toMatchObject({ object: 'response', status: 'completed', model: 'gpt-5-mini', background: false });
      expect(row.response.body.output_text.length).toBeGreaterThan(0);
      expect(row.response.body.usage.input_tokens).toBeGreaterThan(0);
    }
    expect(output[0].response.body.metadata).toEqual({ longhaul_note: 'x' });

    const errors = await fileLines(done.error_file_id);
    expect(errors.map((row) => row.custom_id)).toEqual(['fails', 'bad']);
    expect(errors[0].response).toMatchObject({ status_code: 500, body: { error: { type: 'server_error' } } });
    expect(errors[1].response).toMatchObject({ status_code: 400, body: { error: { type: 'invalid_request_error', param: 'temperature' } } });

    for (const id of [done.output_file_id, done.error_file_id]) {
      const file = await sim.client.files.retrieve(id as string);
      expect(file).toMatchObject({ purpose: 'batch_output', status: 'processed' });
      expect(specSchemaErrors('OpenAIFile', file)).toBeNull();
    }

    const stats = await sim.sim('/stats');
    // Lines are not creates: a bench counts provider calls from the batch endpoints.
    expect(stats.creates).toBe(0);
    expect(stats.batches).toMatchObject({ created: 1, completed: 1, lines_completed: 2, lines_failed: 2 });
    expect(stats.batches.retrieves).toBe(seen.length + 1);
    const log = (await sim.sim('/request-log')).data.map((entry: any) => `${entry.method} ${entry.path.replace(/batch_[0-9a-f]+/, 'ID')}`);
    expect(log.filter((entry: string) => entry === 'POST /v1/batches')).toHaveLength(1);
    expect(log.filter((entry: string) => entry === 'GET /v1/batches/ID')).toHaveLength(seen.length + 1);
  });

  test('list pages newest first with after and limit, through the SDK paginator too', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await createBatch([line(`l${i}`)])).id);
    const page = await sim.api('/batches?limit=2');
    expect(specSchemaErrors('ListBatchesResponse', page.json)).toBeNull();
    expect(page.json).toMatchObject({ object: 'list', has_more: true, first_id: ids[2], last_id: ids[1] });
    const rest = await sim.api(`/batches?limit=2&after=${ids[1]}`);
    expect(rest.json.data.map((batch: any) => batch.id)).toEqual([ids[0]]);
    expect(rest.json.has_more).toBe(false);
    const all: string[] = [];
    for await (const batch of sim.client.batches.list({ limit: 1 })) all.push(batch.id);
    expect(all).toEqual([...ids].reverse());
    expect((await sim.api('/batches?limit=101')).status).toBe(400);
  });

  test('batch_line_failure_rate fails a share of lines, each reported in the error file', async () => {
    await sim.sim('/config', { batch_line_failure_rate: 0.5, seed: 11 });
    const rows = Array.from({ length: 40 }, (_, i) => line(`r${i}`));
    const created = await createBatch(rows);
    await pollBatch(created.id);
    const done = await sim.client.batches.retrieve(created.id);
    const output = await fileLines(done.output_file_id);
    const errors = await fileLines(done.error_file_id);
    expect(done.request_counts).toEqual({ total: 40, completed: output.length, failed: errors.length });
    expect(errors.length).toBeGreaterThan(8);
    expect(errors.length).toBeLessThan(32);
    expect(new Set([...output, ...errors].map((row) => row.custom_id))).toEqual(new Set(rows.map((row) => row.custom_id)));
    expect(errors.every((row) => row.response.status_code === 500 && row.response.body.error.code === 'server_error')).toBe(true);
  });
});

describe('result files', () => {
  test("output_expires_after sets the result files' expires_at from their creation", async () => {
    const inputFileId = await uploadJsonl([line('a'), line('b', { temperature: 9 })]);
    const created = await sim.client.batches.create({
      input_file_id: inputFileId,
      endpoint: '/v1/responses',
      completion_window: '24h',
      output_expires_after: { anchor: 'created_at', seconds: 3600 },
    });
    await pollBatch(created.id);
    const done = await sim.client.batches.retrieve(created.id);
    for (const id of [done.output_file_id, done.error_file_id]) {
      const file = await sim.client.files.retrieve(id as string);
      expect(file.expires_at).toBe(file.created_at + 3600);
    }
    const tooShort = await sim.api('/batches', {
      body: { input_file_id: inputFileId, endpoint: '/v1/responses', completion_window: '24h', output_expires_after: { anchor: 'created_at', seconds: 60 } },
    });
    expect(tooShort.status).toBe(400);
    expect(tooShort.json.error.param).toBe('output_expires_after.seconds');
  });
});

describe('expiry, failure and cancel', () => {
  test('sim_batch_outcome expired keeps the finished lines and reports the rest as batch_expired', async () => {
    const created = await createBatch([line('a'), line('b'), line('c'), line('d')], { sim_batch_outcome: 'expired' });
    const seen = await pollBatch(created.id);
    expect(statusPath([created, ...seen])).toEqual(['validating', 'in_progress', 'expired']);
    const done = await sim.client.batches.retrieve(created.id);
    expect(done.expired_at).toEqual(expect.any(Number));
    expect(done.completed_at).toBeUndefined();
    expect(done.request_counts).toEqual({ total: 4, completed: 2, failed: 0 });
    expect((await fileLines(done.output_file_id)).map((row) => row.custom_id)).toEqual(['a', 'b']);
    const errors = await fileLines(done.error_file_id);
    expect(errors).toEqual(
      ['c', 'd'].map((customId) => ({
        id: expect.stringMatching(/^batch_req_/),
        custom_id: customId,
        response: null,
        error: { code: 'batch_expired', message: expect.stringContaining('completion window') },
      })),
    );
  });

  test('batch_expire_rate 1 expires every batch', async () => {
    await sim.sim('/config', { batch_expire_rate: 1 });
    const created = await createBatch([line('a'), line('b')]);
    expect((await pollBatch(created.id)).at(-1).status).toBe('expired');
  });

  test('malformed input fails the batch in validating with errors per line, and no files', async () => {
    const rows = [line('one'), '{not json', line('one'), { ...line('three'), url: '/v1/chat/completions' }, { ...line('four'), method: 'GET' }];
    const created = await createBatch(rows);
    const seen = await pollBatch(created.id);
    expect(statusPath([created, ...seen])).toEqual(['validating', 'failed']);
    const failed = seen.at(-1);
    expect(failed.failed_at).toEqual(expect.any(Number));
    expect(failed.in_progress_at).toBeUndefined();
    expect(failed.output_file_id).toBeUndefined();
    expect(failed.error_file_id).toBeUndefined();
    expect(failed.errors.object).toBe('list');
    expect(failed.errors.data.map((error: any) => [error.code, error.line])).toEqual([
      ['invalid_json_line', 2],
      ['duplicate_custom_id', 3],
      ['invalid_url', 4],
      ['invalid_method', 5],
    ]);
    const forced = await createBatch([line('x')], { sim_batch_outcome: 'failed' });
    expect((await pollBatch(forced.id)).at(-1)).toMatchObject({ status: 'failed', errors: { data: [expect.objectContaining({ code: 'invalid_request' })] } });
    const empty = await sim.client.batches.create({ input_file_id: await uploadJsonl(['']), endpoint: '/v1/responses', completion_window: '24h' });
    expect((await pollBatch(empty.id)).at(-1).errors.data[0].code).toBe('empty_file');
  });

  test('cancel: cancelling, then cancelled with the lines finished before it; a finished batch cannot be cancelled', async () => {
    await sim.sim('/config', { batch_duration_ms: 2_000_000 });
    const rows = Array.from({ length: 10 }, (_, i) => line(`c${i}`));
    const created = await createBatch(rows);
    let batch = await sim.client.batches.retrieve(created.id);
    while (batch.status !== 'in_progress' || (batch.request_counts?.completed ?? 0) < 2) {
      await sleep(5);
      batch = await sim.client.batches.retrieve(created.id);
    }
    const cancelling = await sim.client.batches.cancel(created.id);
    expect(cancelling.status).toBe('cancelling');
    expect(cancelling.cancelling_at).toEqual(expect.any(Number));
    expect((await sim.client.batches.cancel(created.id)).status).toBe('cancelling');
    const seen = await pollBatch(created.id);
    expect(seen.at(-1).status).toBe('cancelled');
    const done = await sim.client.batches.retrieve(created.id);
    const output = await fileLines(done.output_file_id);
    const errors = await fileLines(done.error_file_id);
    expect(output.length).toBeGreaterThanOrEqual(2);
    expect(output.length).toBeLessThan(10);
    expect(done.request_counts).toEqual({ total: 10, completed: output.length, failed: 0 });
    expect(errors.every((row) => row.response === null && row.error.code === 'batch_cancelled')).toBe(true);
    expect(output.length + errors.length).toBe(10);
    const again = await sim.client.batches.cancel(created.id).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(OpenAI.APIError);
    expect((again as InstanceType<typeof OpenAI.APIError>).status).toBe(409);
    expect((await sim.sim('/stats')).batches).toMatchObject({ cancels: 2, cancelled: 1 });
  });
});

describe('create validation', () => {
  test('answers OpenAI-style 400s before creating anything', async () => {
    const fileId = await uploadJsonl([line('a')]);
    const create = (body: unknown) => sim.api('/batches', { body });
    const cases: Array<[unknown, string | null, string | null, RegExp]> = [
      [{ input_file_id: 'file-nope', endpoint: '/v1/responses', completion_window: '24h' }, 'input_file_id', 'invalid_value', /No such File object/],
      [{ input_file_id: fileId, endpoint: '/v1/chat/completions', completion_window: '24h' }, 'endpoint', 'unsupported_value', /'\/v1\/responses' only/],
      [{ input_file_id: fileId, endpoint: '/v1/nothing', completion_window: '24h' }, 'endpoint', 'invalid_value', /Supported values are/],
      [{ input_file_id: fileId, endpoint: '/v1/responses', completion_window: '48h' }, 'completion_window', 'invalid_value', /'24h'/],
      [{ endpoint: '/v1/responses', completion_window: '24h' }, 'input_file_id', 'missing_required_parameter', /Missing required parameter/],
      [
        { input_file_id: fileId, endpoint: '/v1/responses', completion_window: '24h', metadata: { sim_batch_outcome: 'late' } },
        'metadata.sim_batch_outcome',
        'invalid_value',
        /expired, failed/,
      ],
    ];
    for (const [body, param, code, message] of cases) {
      const res = await create(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error).toMatchObject({ type: 'invalid_request_error', param, code });
      expect(res.json.error.message).toMatch(message);
    }
    const userData = await uploadJsonl([line('a')], 'user_data');
    const wrongPurpose = await create({ input_file_id: userData, endpoint: '/v1/responses', completion_window: '24h' });
    expect(wrongPurpose.json.error).toMatchObject({ param: 'input_file_id', message: expect.stringContaining("purpose 'batch'") });
    expect((await sim.api('/batches/batch_nope')).status).toBe(404);
    expect((await sim.api('/batches')).json.data).toEqual([]);
    expect((await sim.sim('/stats')).invalid_requests).toBe(3);
  });
});

describe('batch webhooks', () => {
  function headersOf(headers: IncomingHttpHeaders): Record<string, string> {
    return { 'webhook-id': String(headers['webhook-id']), 'webhook-timestamp': String(headers['webhook-timestamp']), 'webhook-signature': String(headers['webhook-signature']) };
  }

  test('one signed batch.completed / failed / expired / cancelled per batch, verifiable by standardwebhooks and the SDK', async () => {
    const completed = await createBatch([line('a')]);
    const failed = await createBatch([line('a')], { sim_batch_outcome: 'failed' });
    const expired = await createBatch([line('a'), line('b')], { sim_batch_outcome: 'expired' });
    const cancelled = await createBatch([line('a')]);
    await sim.client.batches.cancel(cancelled.id);
    await receiver.waitFor((received) => received.length >= 4);
    await sleep(50);
    expect(receiver.received).toHaveLength(4);
    const types = new Map<string, string>();
    for (const delivery of receiver.received) {
      expect(new Webhook(SECRET).verify(delivery.body, headersOf(delivery.headers))).toBeTruthy();
      const event = await sim.client.webhooks.unwrap(delivery.body, headersOf(delivery.headers), SECRET);
      expect(JSON.parse(delivery.body)).toEqual({ id: event.id, object: 'event', type: event.type, created_at: expect.any(Number), data: { id: expect.any(String) } });
      expect(delivery.headers['webhook-id']).toBe(event.id);
      types.set((event.data as { id: string }).id, event.type);
    }
    expect(Object.fromEntries(types)).toEqual({
      [completed.id]: 'batch.completed',
      [failed.id]: 'batch.failed',
      [expired.id]: 'batch.expired',
      [cancelled.id]: 'batch.cancelled',
    });
    // The event's created_at is the moment the batch became terminal.
    const done = await sim.client.batches.retrieve(completed.id);
    const event = receiver.received.map((delivery) => JSON.parse(delivery.body)).find((e) => e.data.id === completed.id);
    expect(event.created_at).toBe(done.completed_at);
  });
});
