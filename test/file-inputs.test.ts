/**
 * File inputs through the whole pipeline: uploads through the provider's Files API, file parts by
 * id / URL / inline data, the guide's size limits, automatic upload of large inline files, and
 * tenant isolation of file ids.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

const MiB = 1024 * 1024;
let stack: Stack;
let otherTenant: { authorization: string };
beforeAll(async () => {
  stack = await startStack({ api: { bodyLimit: '64mb' } });
  const other = await createTenant(stack.db.db, 'other tenant');
  otherTenant = { authorization: `Bearer ${other.apiKey}` };
});
afterAll(async () => {
  await stack?.stop();
});

function pdf(bytes: number, seed = 1): Buffer {
  const data = Buffer.alloc(bytes, seed);
  data.write('%PDF-1.7\n');
  return data;
}

async function upload(data: Buffer, fields: Record<string, string> = { purpose: 'user_data' }, headers: Record<string, string> = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([new Uint8Array(data)], { type: 'application/pdf' }), 'report.pdf');
  const res = await fetch(`${stack.apiUrl}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${stack.apiKey}`, ...headers }, body: form });
  return { status: res.status, body: (await res.json()) as any };
}

const dataUrl = (data: Buffer) => `data:application/pdf;base64,${data.toString('base64')}`;

function withParts(...parts: Record<string, unknown>[]) {
  return jobBody({ input: [{ role: 'user', content: [{ type: 'input_text', text: 'Summarise the attached documents.' }, ...parts] }], reasoning: { effort: 'low' } }, 50);
}

async function run(body: Record<string, unknown>) {
  const res = await stack.api('POST', '/v1/jobs', body);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return stack.waitForJob(res.body.id, isTerminalJob);
}

/** The file as the provider (simulator) holds it. */
async function providerFile(id: string) {
  const res = await fetch(`${stack.simUrl}/v1/files/${id}`, { headers: { authorization: 'Bearer sk-test' } });
  return (await res.json()) as any;
}

const sentFor = (responseId: string) => stack.simApi('GET', `/sim/requests/${responseId}`);
const sentParts = async (responseId: string) => (await sentFor(responseId)).input[0].content as any[];

describe('POST /v1/files', () => {
  it('uploads through the provider, lists and reads the file; a job uses it by id and pays its tokens', async () => {
    const up = await upload(pdf(120_000));
    expect(up.status, JSON.stringify(up.body)).toBe(200);
    expect(up.body).toMatchObject({ object: 'file', bytes: 120_000, filename: 'report.pdf', purpose: 'user_data' });
    expect(up.body.id).toMatch(/^file-/);
    // The provider has it.
    expect((await providerFile(up.body.id)).bytes).toBe(120_000);
    expect((await stack.api('GET', `/v1/files/${up.body.id}`)).body.id).toBe(up.body.id);
    expect((await stack.api('GET', '/v1/files')).body.data.map((f: any) => f.id)).toContain(up.body.id);

    const done = await run(withParts({ type: 'input_file', file_id: up.body.id }));
    expect(done.status).toBe('completed');
    // 120 000 bytes = 3 pages of 1 000 tokens each, on top of the text.
    expect(done.usage.input_tokens).toBeGreaterThanOrEqual(3_000);
    expect(done.estimated_input_tokens).toBeGreaterThanOrEqual(3_000);
    expect((await sentParts(done.response_id))[1]).toEqual({ type: 'input_file', file_id: up.body.id });
  });

  it("keeps tenants' files apart and forgets deleted ones", async () => {
    const up = await upload(pdf(1000));
    const stranger = await stack.api('POST', '/v1/jobs', withParts({ type: 'input_file', file_id: up.body.id }), otherTenant);
    expect(stranger.status).toBe(404);
    expect(stranger.body.error).toMatchObject({ code: 'file_not_found', param: 'input[0].content[1].file_id' });
    expect((await stack.api('GET', `/v1/files/${up.body.id}`, undefined, otherTenant)).status).toBe(404);
    expect((await stack.api('DELETE', `/v1/files/${up.body.id}`, undefined, otherTenant)).status).toBe(404);

    const deleted = await stack.api('DELETE', `/v1/files/${up.body.id}`);
    expect(deleted.body).toMatchObject({ id: up.body.id, deleted: true });
    expect((await stack.api('GET', `/v1/files/${up.body.id}`)).status).toBe(404);
    expect((await stack.api('POST', '/v1/jobs', withParts({ type: 'input_file', file_id: up.body.id }))).status).toBe(404);
  });

  it('refuses uploads without a file, with another purpose, or over the per-file limit', async () => {
    expect((await upload(pdf(100), {})).body.error).toMatchObject({ code: 'missing_required_parameter', param: 'purpose' });
    expect((await upload(pdf(100), { purpose: 'fine-tune' })).body.error).toMatchObject({ code: 'invalid_value', param: 'purpose' });
    const big = await upload(pdf(10 * MiB));
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe('file_too_large');
    const json = await stack.api('POST', '/v1/files', { purpose: 'user_data' });
    expect(json.status).toBe(400);
  });
});

describe('file parts in jobs', () => {
  it('sends small inline files inline and uploads large ones, referencing them by id', async () => {
    const small = await run(withParts({ type: 'input_file', filename: 'small.pdf', file_data: dataUrl(pdf(2_000)) }));
    expect(small.status, JSON.stringify(small.error)).toBe('completed');
    expect((await sentParts(small.response_id))[1]).toMatchObject({
      type: 'input_file',
      filename: 'small.pdf',
      file_data: expect.stringMatching(/^data:application\/pdf;base64,/),
    });

    const large = await run(withParts({ type: 'input_file', filename: 'large.pdf', file_data: dataUrl(pdf(2 * MiB, 7)) }));
    expect(large.status).toBe('completed');
    const part = (await sentParts(large.response_id))[1];
    expect(part).toEqual({ type: 'input_file', file_id: expect.stringMatching(/^file-/) });
    expect((await providerFile(part.file_id)).bytes).toBe(2 * MiB);
    // The tenant owns the uploaded file like any other.
    expect((await stack.api('GET', `/v1/files/${part.file_id}`)).body).toMatchObject({ bytes: 2 * MiB, filename: 'large.pdf' });
    // 2 MiB = 42 pages.
    expect(large.usage.input_tokens).toBeGreaterThanOrEqual(42_000);
  });

  it('uploads an inline file once for a request repeated with the same Idempotency-Key', async () => {
    const body = withParts({ type: 'input_file', filename: 'once.pdf', file_data: dataUrl(pdf(MiB + 10, 9)) });
    const headers = { 'Idempotency-Key': `files-${Date.now()}` };
    const filesBefore = (await stack.simApi('GET', '/sim/stats')).files;
    const first = await stack.api('POST', '/v1/jobs', body, headers);
    const again = await stack.api('POST', '/v1/jobs', body, headers);
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    const filesAfter = (await stack.simApi('GET', '/sim/stats')).files;
    expect(filesAfter.created - filesBefore.created).toBe(1);
  });

  it('passes file URLs and images to the provider, which fetches them', async () => {
    const done = await run(
      withParts(
        { type: 'input_file', file_url: 'https://www.berkshirehathaway.com/letters/2024ltr.pdf' },
        { type: 'input_image', image_url: 'https://example.com/otter.png', detail: 'low' },
      ),
    );
    expect(done.status).toBe('completed');
    expect(done.usage.input_tokens).toBeGreaterThanOrEqual(4_000 + 85);
  });

  it('refuses a part with a bad source, naming it', async () => {
    const cases: [Record<string, unknown>, string, string][] = [
      [{ type: 'input_file', file_url: 'ftp://example.com/a.pdf' }, 'invalid_file_url', 'input[0].content[1].file_url'],
      [{ type: 'input_file', file_url: 'not a url' }, 'invalid_file_url', 'input[0].content[1].file_url'],
      [{ type: 'input_file', filename: 'a.pdf', file_data: 'JVBERi0xLjcK' }, 'invalid_file_data', 'input[0].content[1].file_data'],
      [{ type: 'input_file', file_data: dataUrl(pdf(10)) }, 'missing_required_parameter', 'input[0].content[1].filename'],
      [{ type: 'input_file', file_id: 'file-abc', file_url: 'https://example.com/a.pdf' }, 'invalid_file_part', 'input[0].content[1]'],
      [{ type: 'input_file' }, 'invalid_file_part', 'input[0].content[1]'],
      [{ type: 'input_image', image_url: 'data:image/png;base64,%%%' }, 'invalid_file_data', 'input[0].content[1].image_url'],
    ];
    for (const [part, code, param] of cases) {
      const res = await stack.api('POST', '/v1/jobs', withParts(part));
      expect(res.status, JSON.stringify(part)).toBe(400);
      expect(res.body.error).toMatchObject({ code, param });
    }
  });

  it("enforces the guide's limits before anything reaches the provider: each file < 10 MB, all files <= 32 MB", async () => {
    const creates = (await stack.simApi('GET', '/sim/stats')).creates;
    const tooBig = await stack.api('POST', '/v1/jobs', withParts({ type: 'input_file', filename: 'big.pdf', file_data: dataUrl(pdf(10 * MiB)) }));
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error).toMatchObject({ type: 'invalid_request_error', code: 'file_too_large', param: 'input[0].content[1]' });
    expect(tooBig.body.error.message).toContain('input[0].content[1]');

    // Three uploaded 9 MB files (27 MB) and a 6 MB inline one: the inline part crosses 32 MB.
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await upload(pdf(9 * MiB, i + 2))).body.id);
    const total = await stack.api(
      'POST',
      '/v1/jobs',
      withParts(...ids.map((file_id) => ({ type: 'input_file', file_id })), { type: 'input_file', filename: 'six.pdf', file_data: dataUrl(pdf(6 * MiB)) }),
    );
    expect(total.status).toBe(413);
    expect(total.body.error).toMatchObject({ code: 'files_too_large', param: 'input[0].content[4]' });
    // Nothing was created at the provider for the refused jobs.
    expect((await stack.simApi('GET', '/sim/stats')).creates).toBe(creates);

    // Within the limits, the same files are fine.
    const ok = await stack.api('POST', '/v1/jobs', withParts(...ids.slice(0, 3).map((file_id) => ({ type: 'input_file', file_id }))));
    expect(ok.status).toBe(202);
  });
});
