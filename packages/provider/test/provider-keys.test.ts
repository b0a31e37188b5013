/**
 * The provider with several keys, against the simulator with keys in separate projects (a
 * response is not found with another project's key, as at OpenAI): creates take the active keys
 * in turn and answer the key's id, calls about an existing object use the id they are given, a
 * 401 moves a create to the next key, and the key errors (`no_provider_key`,
 * `provider_key_missing`, `provider_key_unknown`) are classified for the caller.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSimServer, type ListeningSim } from '@longhaul/sim';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKeyring, createProvider, type Keyring, type ProviderRequestEvent } from '../src/index.ts';

const KEYS = { a: 'sk-provider-test-key-a-aaaa', b: 'sk-provider-test-key-b-bbbb' };
let sim: ListeningSim;
let dir: string;
const keyrings: Keyring[] = [];

const simApi = async (method: string, p: string, body?: unknown) =>
  (
    await fetch(`${sim.url}/sim${p}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
  ).json() as Promise<any>;

function setup(keys: unknown[], options: { unknownKeyGraceMs?: number } = {}) {
  const file = path.join(dir, `keys-${keyrings.length}.json`);
  writeFileSync(file, JSON.stringify(keys));
  const keyring = createKeyring({ file, watchIntervalMs: 0, ...options });
  keyrings.push(keyring);
  const events: ProviderRequestEvent[] = [];
  const provider = createProvider({ keyring, baseURL: `${sim.url}/v1`, readRetries: 0, onRequest: (e) => events.push(e) });
  return { provider, keyring, events };
}

const long = { model: 'gpt-5', input: 'x', metadata: { sim_duration_ms: '100000000' } };
const failure = (p: Promise<unknown>) =>
  p.then(
    () => null,
    (e: unknown) => e,
  );

beforeAll(async () => {
  sim = await createSimServer({ time_scale: 0.01 }, { apiKeys: [KEYS.a, KEYS.b] }).listen(0);
  dir = mkdtempSync(path.join(tmpdir(), 'longhaul-provider-keys-'));
});
beforeEach(async () => {
  await simApi('POST', '/reset');
});
afterAll(async () => {
  for (const k of keyrings) k.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a provider with several keys', () => {
  it('creates with the active keys in turn and reaches each object with the key recorded for it', async () => {
    const { provider } = setup([
      { id: 'a', key: KEYS.a },
      { id: 'b', key: KEYS.b },
    ]);
    const first = await provider.createResponse(long);
    const second = await provider.createResponse(long);
    expect([first.keyId, second.keyId]).toEqual(['a', 'b']);
    expect((await provider.retrieveResponse(second.response.id, { keyId: 'b' })).keyId).toBe('b');
    // With the other project's key the provider does not know it.
    expect(await failure(provider.retrieveResponse(second.response.id, { keyId: 'a' }))).toMatchObject({ kind: 'not_found', status: 404 });
    // A key is not known: each usable key is asked.
    expect((await provider.retrieveResponse(second.response.id, { anyKey: true })).keyId).toBe('b');

    const conversation = await provider.createConversation({});
    expect(conversation.keyId).toBe('a');
    expect((await provider.retrieveConversation(conversation.conversation.id, { keyId: conversation.keyId })).id).toBe(conversation.conversation.id);
    // A create that refers to it is made with its key.
    const turn = await provider.createResponse({ ...long, conversation: conversation.conversation.id }, { keyId: conversation.keyId });
    expect(turn.keyId).toBe('a');
    const file = await provider.createFile({ data: new TextEncoder().encode('hello'), filename: 'a.txt' }, 'user_data');
    expect((await provider.deleteFile(file.file.id, { keyId: file.keyId })).deleted).toBe(true);
    expect((await provider.cancelResponse(first.response.id, { keyId: 'a' })).response.status).toBe('cancelled');
  });

  it('moves a create to the next key on a 401, and fails with no_provider_key when none is left', async () => {
    const { provider, keyring, events } = setup([
      { id: 'a', key: KEYS.a },
      { id: 'b', key: KEYS.b },
    ]);
    await simApi('POST', `/keys/${KEYS.a}/revoke`);
    const created = await provider.createResponse(long, { jobId: 'job_1' });
    expect(created.keyId).toBe('b');
    expect(events.map((e) => [e.operation, e.status, e.keyId, e.jobId])).toEqual([
      ['create', 401, 'a', 'job_1'],
      ['create', 200, 'b', 'job_1'],
    ]);
    expect(keyring.describe()).toEqual([
      { id: 'a', state: 'rejected' },
      { id: 'b', state: 'active' },
    ]);
    // Out of rotation: the next creates go straight to b.
    expect((await provider.createConversation({})).keyId).toBe('b');
    await simApi('POST', `/keys/${KEYS.b}/revoke`);
    expect(await failure(provider.createResponse(long))).toMatchObject({ kind: 'rejected', status: null, code: 'no_provider_key' });
    expect(await failure(provider.createFile({ data: new Uint8Array([1]), filename: 'x' }, 'user_data'))).toMatchObject({ code: 'no_provider_key' });
  });

  it('classifies a key id it lacks: removed from the file, or not read by this process yet', async () => {
    const { provider } = setup([{ id: 'a', key: KEYS.a }]);
    const created = await provider.createResponse(long);
    expect(await failure(provider.retrieveResponse(created.response.id, { keyId: 'gone' }))).toMatchObject({ kind: 'transient', code: 'provider_key_unknown' });
    const impatient = setup([{ id: 'a', key: KEYS.a }], { unknownKeyGraceMs: 0 });
    expect(await failure(impatient.provider.cancelResponse(created.response.id, { keyId: 'gone' }))).toMatchObject({
      kind: 'rejected',
      status: null,
      code: 'provider_key_missing',
      message: expect.stringContaining("'gone'"),
    });
    // Null is the key `default`, or the only key.
    expect((await provider.retrieveResponse(created.response.id, { keyId: null })).keyId).toBe('a');
  });
});
