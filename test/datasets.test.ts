/**
 * Evaluation datasets through the API: creation from JSON and from JSONL, immutable versions,
 * item paging, listing, tenant isolation, input errors that name the field (and the JSONL line),
 * and deletion, which a running eval blocks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant, schema } from '@longhaul/db';
import { type Stack, startStack } from './harness.ts';

let stack: Stack;
const statuses: number[] = [];

beforeAll(async () => {
  stack = await startStack({ startWorker: false });
});
afterAll(async () => {
  await stack?.stop();
});

async function call(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  const res = await stack.api(method, path, body, headers);
  statuses.push(res.status);
  return res;
}

const jsonl = (lines: string[]) => ({ body: lines.join('\n'), headers: { 'content-type': 'application/x-ndjson' } });

async function createDataset(body: Record<string, unknown>): Promise<any> {
  const res = await call('POST', '/v1/datasets', body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

const items = (n: number, tag = 'v1') => Array.from({ length: n }, (_, i) => ({ variables: { question: `${tag} q${i}` }, expected: { answer: i }, metadata: { tag } }));

describe('datasets', () => {
  it('creates a dataset from JSON and reads its version and items', async () => {
    const created = await call('POST', '/v1/datasets', {
      name: 'support questions',
      description: 'tier 1',
      note: 'first cut',
      items: [{ variables: { question: 'Where is my order?', company: 'Acme' }, expected: 'tracking', metadata: { source: 'tickets' } }, { variables: { question: 'Refund?' } }],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ object: 'dataset', name: 'support questions', description: 'tier 1', latest_version: 1, item_count: 2 });
    expect(created.body.id).toMatch(/^ds_[0-9A-Za-z]{24}$/);
    expect(created.headers.get('location')).toBe(`/v1/datasets/${created.body.id}`);
    expect(typeof created.body.created_at).toBe('number');

    const id = created.body.id;
    expect((await call('GET', `/v1/datasets/${id}`)).body).toEqual(created.body);
    const v1 = await call('GET', `/v1/datasets/${id}/versions/1`);
    expect(v1.body).toEqual({ object: 'dataset.version', dataset_id: id, version: 1, item_count: 2, note: 'first cut', created_at: created.body.created_at });
    const listed = await call('GET', `/v1/datasets/${id}/versions/1/items`);
    expect(listed.body).toEqual({
      object: 'list',
      data: [
        { object: 'dataset.item', index: 0, variables: { question: 'Where is my order?', company: 'Acme' }, expected: 'tracking', metadata: { source: 'tickets' } },
        { object: 'dataset.item', index: 1, variables: { question: 'Refund?' }, expected: null, metadata: {} },
      ],
      has_more: false,
    });
  });

  it('creates a dataset from a JSONL upload (both content types, CRLF and a trailing newline)', async () => {
    const lines = ['{"variables":{"q":"one"},"expected":{"label":"a"}}', '{"variables":{"q":"two"},"metadata":{"k":"v"}}'];
    const res = await call('POST', '/v1/datasets?name=from%20jsonl&note=upload', `${lines.join('\r\n')}\r\n`, { 'content-type': 'application/x-ndjson' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ object: 'dataset', name: 'from jsonl', description: null, latest_version: 1, item_count: 2 });
    const listed = await call('GET', `/v1/datasets/${res.body.id}/versions/1/items`);
    expect(listed.body.data).toEqual([
      { object: 'dataset.item', index: 0, variables: { q: 'one' }, expected: { label: 'a' }, metadata: {} },
      { object: 'dataset.item', index: 1, variables: { q: 'two' }, expected: null, metadata: { k: 'v' } },
    ]);
    expect((await call('GET', `/v1/datasets/${res.body.id}/versions/1`)).body.note).toBe('upload');

    const other = await call('POST', '/v1/datasets?name=jsonl2', '{"variables":{"q":"x"}}', { 'content-type': 'application/jsonl' });
    expect(other.status, JSON.stringify(other.body)).toBe(201);
    expect(other.body.item_count).toBe(1);
  });

  it('keeps versions immutable: v2 is added, v1 stays readable as it was', async () => {
    const ds = await createDataset({ name: 'versioned', items: items(3) });
    const v2 = await call('POST', `/v1/datasets/${ds.id}/versions`, { note: 'more', items: items(5, 'v2') });
    expect(v2.status, JSON.stringify(v2.body)).toBe(201);
    expect(v2.body).toMatchObject({ object: 'dataset.version', dataset_id: ds.id, version: 2, item_count: 5, note: 'more' });
    expect(v2.headers.get('location')).toBe(`/v1/datasets/${ds.id}/versions/2`);

    const v3 = await call('POST', `/v1/datasets/${ds.id}/versions`, jsonl(['{"variables":{"question":"v3"}}']).body, jsonl([]).headers);
    expect(v3.status, JSON.stringify(v3.body)).toBe(201);
    expect(v3.body).toMatchObject({ version: 3, item_count: 1, note: null });

    expect((await call('GET', `/v1/datasets/${ds.id}`)).body).toMatchObject({ latest_version: 3, item_count: 1 });
    const v1Items = await call('GET', `/v1/datasets/${ds.id}/versions/1/items`);
    expect(v1Items.body.data.map((i: any) => i.variables.question)).toEqual(['v1 q0', 'v1 q1', 'v1 q2']);
    const v2Items = await call('GET', `/v1/datasets/${ds.id}/versions/2/items`);
    expect(v2Items.body.data.map((i: any) => i.variables.question)).toEqual(['v2 q0', 'v2 q1', 'v2 q2', 'v2 q3', 'v2 q4']);

    const versions = await call('GET', `/v1/datasets/${ds.id}/versions?limit=2`);
    expect(versions.body.data.map((v: any) => v.version)).toEqual([3, 2]);
    expect(versions.body.has_more).toBe(true);
    const rest = await call('GET', `/v1/datasets/${ds.id}/versions?limit=2&after=2`);
    expect(rest.body.data.map((v: any) => v.version)).toEqual([1]);
    expect(rest.body.has_more).toBe(false);

    for (const bad of ['4', '0', 'latest', '99999999999']) {
      const res = await call('GET', `/v1/datasets/${ds.id}/versions/${bad}`);
      expect(res.status).toBe(404);
      expect(res.body.error).toMatchObject({ code: 'dataset_version_not_found', param: 'version' });
    }
    expect((await call('GET', `/v1/datasets/${ds.id}/versions/4/items`)).body.error.code).toBe('dataset_version_not_found');
  });

  it('pages items by offset and limit, in index order, across insert chunks', async () => {
    const ds = await createDataset({ name: 'big', items: items(2500) });
    expect(ds.item_count).toBe(2500);
    const first = await call('GET', `/v1/datasets/${ds.id}/versions/1/items?limit=3`);
    expect(first.body.data.map((i: any) => i.index)).toEqual([0, 1, 2]);
    expect(first.body.has_more).toBe(true);
    const middle = await call('GET', `/v1/datasets/${ds.id}/versions/1/items?offset=999&limit=3`);
    expect(middle.body.data.map((i: any) => [i.index, i.variables.question])).toEqual([
      [999, 'v1 q999'],
      [1000, 'v1 q1000'],
      [1001, 'v1 q1001'],
    ]);
    const last = await call('GET', `/v1/datasets/${ds.id}/versions/1/items?offset=2498&limit=10`);
    expect(last.body.data.map((i: any) => i.index)).toEqual([2498, 2499]);
    expect(last.body.has_more).toBe(false);
    const defaultPage = await call('GET', `/v1/datasets/${ds.id}/versions/1/items`);
    expect(defaultPage.body.data).toHaveLength(100);

    const bad = await call('GET', `/v1/datasets/${ds.id}/versions/1/items?limit=0`);
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('limit');
    expect((await call('GET', `/v1/datasets/${ds.id}/versions/1/items?cursor=x`)).body.error).toMatchObject({ code: 'unknown_parameter', param: 'cursor' });
  });

  it('lists a tenant’s datasets newest first with cursor paging', async () => {
    const t = await createTenant(stack.db.db, 'list tenant');
    const auth = { authorization: `Bearer ${t.apiKey}` };
    const made: string[] = [];
    for (const n of ['a', 'b', 'c']) {
      const res = await call('POST', '/v1/datasets', { name: n, items: items(1) }, auth);
      expect(res.status).toBe(201);
      made.push(res.body.id);
    }
    const page1 = await call('GET', '/v1/datasets?limit=2', undefined, auth);
    expect(page1.body.object).toBe('list');
    expect(page1.body.data.map((d: any) => d.id)).toEqual([made[2], made[1]]);
    expect(page1.body.has_more).toBe(true);
    expect(page1.body.data[0]).toMatchObject({ object: 'dataset', latest_version: 1, item_count: 1 });
    const page2 = await call('GET', `/v1/datasets?limit=2&after=${made[1]}`, undefined, auth);
    expect(page2.body.data.map((d: any) => d.id)).toEqual([made[0]]);
    expect(page2.body.has_more).toBe(false);
    expect((await call('GET', '/v1/datasets?after=nope', undefined, auth)).body.error).toMatchObject({ param: 'after' });
  });

  it('hides another tenant’s datasets (404 dataset_not_found everywhere)', async () => {
    const ds = await createDataset({ name: 'private', items: items(2) });
    const other = await createTenant(stack.db.db, 'other tenant');
    const auth = { authorization: `Bearer ${other.apiKey}` };
    const probes: Array<[string, string, unknown?]> = [
      ['GET', `/v1/datasets/${ds.id}`],
      ['GET', `/v1/datasets/${ds.id}/versions`],
      ['GET', `/v1/datasets/${ds.id}/versions/1`],
      ['GET', `/v1/datasets/${ds.id}/versions/1/items`],
      ['POST', `/v1/datasets/${ds.id}/versions`, { items: items(1) }],
      ['DELETE', `/v1/datasets/${ds.id}`],
    ];
    for (const [method, path, body] of probes) {
      const res = await call(method, path, body, auth);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error).toMatchObject({ code: 'dataset_not_found', param: 'id' });
    }
    expect((await call('GET', '/v1/datasets', undefined, auth)).body.data).toEqual([]);
    // Still there, unchanged, for its owner.
    expect((await call('GET', `/v1/datasets/${ds.id}`)).body).toMatchObject({ latest_version: 1, item_count: 2 });
  });

  it('refuses bad input with a 400 naming the parameter', async () => {
    const cases: Array<[unknown, string, string]> = [
      [{ items: items(1) }, 'name', 'missing_required_parameter'],
      [{ name: '  ', items: items(1) }, 'name', 'invalid_value'],
      [{ name: 'x', items: [] }, 'items', 'invalid_value'],
      [{ name: 'x' }, 'items', 'missing_required_parameter'],
      [{ name: 'x', items: [{ variables: { q: 'ok' } }, { variables: { q: 3 } }] }, 'items[1].variables.q', 'invalid_value'],
      [{ name: 'x', items: [{ variables: { 'bad key': 'v' } }] }, 'items[0].variables.bad key', 'invalid_value'],
      [{ name: 'x', items: [{ variables: {}, extra: 1 }] }, 'items[0].extra', 'unknown_parameter'],
      [{ name: 'x', items: [{ variables: {}, metadata: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v'])) }] }, 'items[0].metadata', 'invalid_value'],
      [{ name: 'x', items: [{ variables: { q: 'a\u0000b' } }] }, 'items[0].variables.q', 'invalid_characters'],
      [{ name: 'x', items: items(10_001) }, 'items', 'invalid_value'],
    ];
    for (const [body, param, code] of cases) {
      const res = await call('POST', '/v1/datasets', body, {});
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error, JSON.stringify(body).slice(0, 200)).toMatchObject({ param, code });
    }
    const tooMany = await call('POST', '/v1/datasets?name=many', Array.from({ length: 10_001 }, () => '{"variables":{}}').join('\n'), { 'content-type': 'application/x-ndjson' });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error).toMatchObject({ param: 'items' });
  });

  it('names the JSONL line (items[line - 1]) and the field of a bad line', async () => {
    const post = (lines: string[], query = '?name=upload') => call('POST', `/v1/datasets${query}`, lines.join('\n'), { 'content-type': 'application/x-ndjson' });
    const good = '{"variables":{"q":"fine"}}';

    const unparseable = await post([good, good, '{"variables": {"q": "broken"']);
    expect(unparseable.status).toBe(400);
    expect(unparseable.body.error).toMatchObject({ param: 'items[2]', code: 'invalid_jsonl' });
    expect(unparseable.body.error.message).toContain('line 3');

    const badField = await post([good, '{"variables":{"q":42}}']);
    expect(badField.status).toBe(400);
    expect(badField.body.error).toMatchObject({ param: 'items[1].variables.q', code: 'invalid_value' });

    const notObject = await post(['[1,2]']);
    expect(notObject.body.error).toMatchObject({ param: 'items[0]' });

    const blank = await post([good, '', good]);
    expect(blank.body.error).toMatchObject({ param: 'items[1]', code: 'invalid_jsonl' });

    const deep = await post([good, `{"variables":{},"expected":${'['.repeat(100)}${']'.repeat(100)}}`]);
    expect(deep.status).toBe(400);
    expect(deep.body.error.code).toBe('nesting_too_deep');
    expect(deep.body.error.param).toMatch(/^items\[1\]\.expected/);

    const noName = await post([good], '');
    expect(noName.body.error).toMatchObject({ param: 'name', code: 'missing_required_parameter' });
    const empty = await post([], '?name=empty');
    expect(empty.body.error).toMatchObject({ param: 'items', code: 'invalid_value' });
    const unknownQuery = await post([good], '?name=x&colour=red');
    expect(unknownQuery.body.error).toMatchObject({ param: 'colour', code: 'unknown_parameter' });

    const malformedId = await call('GET', '/v1/datasets/prm_abcdefghijklmnop');
    expect(malformedId.status).toBe(400);
    expect(malformedId.body.error).toMatchObject({ param: 'id', code: 'invalid_id' });
    const unknownId = await call('GET', '/v1/datasets/ds_abcdefghijklmnopqrstuvwx');
    expect(unknownId.status).toBe(404);
  });

  it('deletes a dataset (then 404), unless a running eval uses it (409 dataset_in_use)', async () => {
    const ds = await createDataset({ name: 'doomed', items: items(3) });
    await call('POST', `/v1/datasets/${ds.id}/versions`, { items: items(2) });

    // An eval row as the eval runner writes it: there is no API to start one in this test.
    const prompt = await call('POST', '/v1/prompts', { name: 'p', template: { model: 'o3', input: 'Answer {{question}}' } });
    expect(prompt.status, JSON.stringify(prompt.body)).toBe(201);
    const evalRow = {
      id: `eval_${ds.id.slice(3)}`,
      tenantId: stack.tenantId,
      promptId: prompt.body.id,
      versions: [1],
      datasetId: ds.id,
      datasetVersion: 1,
      graders: [],
      repeats: 1,
      concurrency: 1,
    } as typeof schema.evals.$inferInsert;
    await stack.db.db.insert(schema.evals).values(evalRow);

    const refused = await call('DELETE', `/v1/datasets/${ds.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: 'dataset_in_use' });
    expect((await call('GET', `/v1/datasets/${ds.id}`)).status).toBe(200);

    await stack.db.pool.query(`update evals set status = 'completed' where id = $1`, [evalRow.id]);
    const deleted = await call('DELETE', `/v1/datasets/${ds.id}`);
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ id: ds.id, object: 'dataset.deleted', deleted: true });

    for (const path of [`/v1/datasets/${ds.id}`, `/v1/datasets/${ds.id}/versions/1`, `/v1/datasets/${ds.id}/versions/2/items`]) {
      const res = await call('GET', path);
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('dataset_not_found');
    }
    expect((await call('DELETE', `/v1/datasets/${ds.id}`)).status).toBe(404);
    const { rows } = await stack.db.pool.query('select count(*)::int as n from dataset_items where dataset_id = $1', [ds.id]);
    expect(rows[0].n).toBe(0);
    // The eval's results outlive the dataset.
    expect((await stack.db.pool.query('select 1 from evals where id = $1', [evalRow.id])).rowCount).toBe(1);
  });

  it('never answered with a 5xx', () => {
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
  });
});
