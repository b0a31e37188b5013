/**
 * Longhaul's /v1/files and /v1/conversations driven only by the official `openai` SDK, pointed at
 * Longhaul as a client pointed at OpenAI would be: every object returned is checked against
 * OpenAI's OpenAPI document (`responses-subset.json`), the SDK's auto-pagination walks the lists,
 * and another tenant's ids surface as the SDK's NotFoundError.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTenant } from '@longhaul/db';
import { specSchemaErrors } from '@longhaul/specs/validation';
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';

let stack: Stack;
let client: OpenAI;
let stranger: OpenAI;
let scratch: string;
beforeAll(async () => {
  stack = await startStack({ startWorker: false });
  client = new OpenAI({ apiKey: stack.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
  const other = await createTenant(stack.db.db, 'other tenant');
  stranger = new OpenAI({ apiKey: other.apiKey, baseURL: `${stack.apiUrl}/v1`, maxRetries: 0 });
  scratch = await mkdtemp(join(tmpdir(), 'longhaul-sdk-files-'));
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
  await stack?.stop();
});

/** `obj` as it came over the wire satisfies the spec's schema `name`. */
function expectSpec(name: string, obj: unknown) {
  expect(specSchemaErrors(name, obj), `${name}: ${JSON.stringify(obj)}`).toBeNull();
}

function pdf(bytes: number, seed = 1): Buffer {
  const data = Buffer.alloc(bytes, seed);
  data.write('%PDF-1.7\n');
  return data;
}

/** The error a call failed with (the test fails if it succeeded). */
async function failure(call: Promise<unknown>): Promise<unknown> {
  try {
    await call;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('files through the SDK', () => {
  it('uploads a File, an fs stream and a toFile() buffer; each answer is an OpenAIFile', async () => {
    const asFile = await client.files.create({ file: new File([new Uint8Array(pdf(1_500))], 'report.pdf', { type: 'application/pdf' }), purpose: 'user_data' });
    const path = join(scratch, 'notes.pdf');
    await writeFile(path, pdf(2_500, 2));
    const asStream = await client.files.create({ file: createReadStream(path), purpose: 'user_data' });
    const asBuffer = await client.files.create({ file: await toFile(pdf(3_500, 3), 'draft.pdf', { type: 'application/pdf' }), purpose: 'user_data' });

    for (const [file, filename, bytes] of [
      [asFile, 'report.pdf', 1_500],
      [asStream, 'notes.pdf', 2_500],
      [asBuffer, 'draft.pdf', 3_500],
    ] as const) {
      expectSpec('OpenAIFile', file);
      expect(file).toMatchObject({ object: 'file', filename, bytes, purpose: 'user_data', status: 'processed' });
      expect(file.id).toMatch(/^file-/);
      const retrieved = await client.files.retrieve(file.id);
      expectSpec('OpenAIFile', retrieved);
      expect(retrieved).toEqual(file);
    }
  });

  it('lists with purpose, order, limit and after; auto-pagination walks every page', async () => {
    const uploaded: string[] = [];
    for (let i = 0; i < 5; i++) uploaded.push((await client.files.create({ file: await toFile(pdf(200 + i, i), `page-${i}.pdf`), purpose: 'user_data' })).id);

    const everything = await client.files.list();
    expectSpec(
      'ListFilesResponse',
      await client.files
        .list()
        .asResponse()
        .then((r) => r.json()),
    );
    // Newest first, as OpenAI orders by default.
    const newestFirst = everything.data.map((f) => f.id);
    expect(newestFirst.slice(0, 5)).toEqual([...uploaded].reverse());
    expect(everything.has_more).toBe(false);

    const firstPage = await client.files.list({ purpose: 'user_data', order: 'asc', limit: 2 });
    const wire = await client.files.list({ purpose: 'user_data', order: 'asc', limit: 2 }).asResponse();
    const body = await wire.json();
    expectSpec('ListFilesResponse', body);
    expect(body).toMatchObject({ object: 'list', has_more: true, first_id: firstPage.data[0]!.id, last_id: firstPage.data[1]!.id });
    for (const file of body.data) expectSpec('OpenAIFile', file);

    const walked: string[] = [];
    for await (const file of client.files.list({ purpose: 'user_data', order: 'asc', limit: 2 })) walked.push(file.id);
    expect(walked).toEqual([...newestFirst].reverse());
    const pages: number[] = [];
    for await (const page of (await client.files.list({ limit: 2 })).iterPages()) pages.push(page.data.length);
    expect(pages.reduce((a, b) => a + b, 0)).toBe(newestFirst.length);
    expect(pages.length).toBe(Math.ceil(newestFirst.length / 2));

    const after = await client.files.list({ after: uploaded[3], limit: 100 });
    expect(after.data.map((f) => f.id).slice(0, 3)).toEqual([uploaded[2], uploaded[1], uploaded[0]]);
    // A purpose Longhaul never uploads for lists nothing (OpenAI filters the same way).
    const none = await client.files.list({ purpose: 'batch' });
    expect(none.data).toEqual([]);
    // OpenAI's document types first_id and last_id as strings; an empty page has neither, and
    // Longhaul answers null there, as the provider does, rather than invent a cursor.
    expect(
      await client.files
        .list({ purpose: 'batch' })
        .asResponse()
        .then((r) => r.json()),
    ).toEqual({ object: 'list', data: [], first_id: null, last_id: null, has_more: false });
  });

  it('deletes a file (a DeleteFileResponse); afterwards it is a NotFoundError and no longer listed, but still a cursor', async () => {
    const older = await client.files.create({ file: await toFile(pdf(800), 'kept.pdf'), purpose: 'user_data' });
    const file = await client.files.create({ file: await toFile(pdf(900), 'gone.pdf'), purpose: 'user_data' });
    const deleted = await client.files.delete(file.id);
    expectSpec('DeleteFileResponse', deleted);
    expect(deleted).toEqual({ id: file.id, object: 'file', deleted: true });
    expect(await failure(client.files.retrieve(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await failure(client.files.delete(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    const ids: string[] = [];
    for await (const f of client.files.list()) ids.push(f.id);
    expect(ids).not.toContain(file.id);
    // A page walk whose last file was deleted meanwhile goes on from where it was.
    expect((await client.files.list({ after: file.id, limit: 1 })).data.map((f) => f.id)).toEqual([older.id]);
  });

  it("answers another tenant's file with NotFoundError and a bad purpose with BadRequestError naming it", async () => {
    const file = await client.files.create({ file: await toFile(pdf(700), 'mine.pdf'), purpose: 'user_data' });
    const retrieved = await failure(stranger.files.retrieve(file.id));
    expect(retrieved).toBeInstanceOf(OpenAI.NotFoundError);
    expect(retrieved).toMatchObject({ status: 404, code: 'file_not_found', param: 'id' });
    expect(await failure(stranger.files.delete(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    const theirs: string[] = [];
    for await (const f of stranger.files.list()) theirs.push(f.id);
    expect(theirs).toEqual([]);
    // Still there for its owner.
    expect((await client.files.retrieve(file.id)).id).toBe(file.id);

    const bad = await failure(client.files.create({ file: await toFile(pdf(100), 'x.jsonl'), purpose: 'fine-tune' }));
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad).toMatchObject({ status: 400, param: 'purpose', code: 'invalid_value' });
  });

  it('refuses expires_after, which Longhaul cannot pass to the provider, rather than keeping the file forever', async () => {
    const refused = await failure(client.files.create({ file: await toFile(pdf(100), 'brief.pdf'), purpose: 'user_data', expires_after: { anchor: 'created_at', seconds: 3600 } }));
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect(refused).toMatchObject({ status: 400, param: 'expires_after', code: 'unsupported_parameter' });
  });
});

describe('conversations through the SDK', () => {
  it('creates one with no arguments, and one with items and metadata; both are ConversationResources', async () => {
    const bare = await client.conversations.create();
    expectSpec('ConversationResource', bare);
    expect(bare).toMatchObject({ object: 'conversation' });
    expect(bare.id).toMatch(/^conv_/);
    const nulls = await client.conversations.create({ items: null, metadata: null });
    expectSpec('ConversationResource', nulls);

    const seeded = await client.conversations.create({
      items: [
        { type: 'message', role: 'user', content: 'Hello!' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'How are you?' }] },
      ],
      metadata: { topic: 'demo' },
    });
    expectSpec('ConversationResource', seeded);
    expect(seeded.metadata).toEqual({ topic: 'demo' });

    const retrieved = await client.conversations.retrieve(seeded.id);
    expectSpec('ConversationResource', retrieved);
    expect(retrieved).toEqual(seeded);
  });

  it('lists items as a ConversationItemList, in both orders, and auto-paginates on last_id', async () => {
    const texts = ['one', 'two', 'three', 'four', 'five'];
    const conversation = await client.conversations.create({ items: texts.map((text) => ({ type: 'message' as const, role: 'user' as const, content: text })) });

    const wire = await client.conversations.items.list(conversation.id).asResponse();
    const page = await wire.json();
    expectSpec('ConversationItemList', page);
    for (const item of page.data) expectSpec('ConversationItem', item);
    const textOf = (item: any) => item.content[0].text as string;
    // Newest first by default.
    expect(page.data.map(textOf)).toEqual([...texts].reverse());

    const walked: string[] = [];
    for await (const item of client.conversations.items.list(conversation.id, { order: 'asc', limit: 2 })) walked.push(textOf(item));
    expect(walked).toEqual(texts);
    const first = await client.conversations.items.list(conversation.id, { order: 'asc', limit: 2 });
    expect(first.has_more).toBe(true);
    expect(first.last_id).toBe(first.data[1]!.id);
    const rest = await client.conversations.items.list(conversation.id, { order: 'asc', after: first.last_id });
    expect(rest.data.map(textOf)).toEqual(texts.slice(2));
  });

  it("updates a conversation's metadata (a ConversationResource)", async () => {
    const conversation = await client.conversations.create({ metadata: { topic: 'draft' } });
    const updated = await client.conversations.update(conversation.id, { metadata: { topic: 'final', owner: 'ops' } });
    expectSpec('ConversationResource', updated);
    expect(updated.metadata).toEqual({ topic: 'final', owner: 'ops' });
    expect((await client.conversations.retrieve(conversation.id)).metadata).toEqual({ topic: 'final', owner: 'ops' });
    expect(await failure(stranger.conversations.update(conversation.id, { metadata: { topic: 'theirs' } }))).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('deletes a conversation (a DeletedConversationResource); afterwards it is a NotFoundError', async () => {
    const conversation = await client.conversations.create({ metadata: { topic: 'short-lived' } });
    const deleted = await client.conversations.delete(conversation.id);
    expectSpec('DeletedConversationResource', deleted);
    expect(deleted).toEqual({ id: conversation.id, object: 'conversation.deleted', deleted: true });
    expect(await failure(client.conversations.retrieve(conversation.id))).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await failure(client.conversations.items.list(conversation.id))).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await failure(client.conversations.delete(conversation.id))).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("answers another tenant's conversation with NotFoundError on every call", async () => {
    const conversation = await client.conversations.create({ items: [{ type: 'message', role: 'user', content: 'private' }] });
    for (const call of [
      () => stranger.conversations.retrieve(conversation.id),
      () => stranger.conversations.items.list(conversation.id),
      () => stranger.conversations.delete(conversation.id),
    ]) {
      const err = await failure(call());
      expect(err).toBeInstanceOf(OpenAI.NotFoundError);
      expect(err).toMatchObject({ status: 404, code: 'conversation_not_found' });
    }
    expect((await client.conversations.retrieve(conversation.id)).id).toBe(conversation.id);
  });

  it("refuses seed items naming another tenant's file with NotFoundError, and a malformed body with BadRequestError", async () => {
    const file = await stranger.files.create({ file: await toFile(pdf(400), 'theirs.pdf'), purpose: 'user_data' });
    const err = await failure(client.conversations.create({ items: [{ type: 'message', role: 'user', content: [{ type: 'input_file', file_id: file.id }] }] }));
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect(err).toMatchObject({ code: 'file_not_found', param: 'items[0].content[0].file_id' });
    const bad = await failure(client.conversations.create({ metadata: { topic: 'x'.repeat(513) } }));
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad).toMatchObject({ param: 'metadata.topic' });
  });
});
