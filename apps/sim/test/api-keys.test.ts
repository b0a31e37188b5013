/**
 * API keys at the simulator (api-keys.ts) through the official SDK: any key by default; once keys
 * are configured, 401 `invalid_api_key` for an unknown or revoked key, objects scoped to the
 * project of the key that created them, and per-key counts in the stats.
 */
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { loadEnv } from '../src/env.ts';
import { createSimServer, type ListeningSim } from '../src/server.ts';

let listening: ListeningSim | undefined;
afterEach(async () => {
  await listening?.close();
  listening = undefined;
});

async function start(apiKeys?: string[]) {
  listening = await createSimServer({ time_scale: 0.01 }, { apiKeys }).listen(0);
  const url = listening.url;
  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0 });
  const sim = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}/sim${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  return { client, sim };
}

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
  );
const quick = { model: 'gpt-5', input: 'hi', background: true, metadata: { sim_duration_ms: '100000' } } as const;

describe('simulator API keys', () => {
  it('accepts any key when none is configured, and counts requests per key', async () => {
    const { client, sim } = await start();
    await client('sk-anything-at-all-1234').responses.create(quick);
    await client('sk-something-else-5678').responses.create(quick);
    const stats = (await sim('GET', '/stats')).body;
    expect(stats.by_key).toEqual({
      'sk-any…1234': { requests: 1, creates: 1, retrieves: 0, cancels: 0, rejected: 0, other_project: 0 },
      'sk-som…5678': { requests: 1, creates: 1, retrieves: 0, cancels: 0, rejected: 0, other_project: 0 },
    });
    expect(JSON.stringify(stats)).not.toContain('sk-anything-at-all-1234');
  });

  it('answers 401 in OpenAI’s shape for an unknown key, and for a key once revoked', async () => {
    const { client, sim } = await start(['sk-sim-key-one-aaaa', 'sk-sim-key-two-bbbb']);
    const unknown = await failure(client('sk-not-configured-cccc').responses.create(quick));
    expect(unknown).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(unknown?.status).toBe(401);
    expect(unknown?.error).toEqual({
      message: 'Incorrect API key provided: sk-not…cccc. You can find your API key at https://platform.openai.com/account/api-keys.',
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_api_key',
    });

    const created = await client('sk-sim-key-two-bbbb').responses.create(quick);
    expect((await sim('POST', '/keys/sk-sim-key-two-bbbb/revoke')).body).toEqual({ key: 'sk-sim…bbbb', revoked: true });
    expect((await failure(client('sk-sim-key-two-bbbb').responses.retrieve(created.id)))?.status).toBe(401);
    expect((await sim('POST', '/keys/sk-never-there/revoke')).status).toBe(404);
    expect((await sim('GET', '/keys')).body).toEqual({
      enforced: true,
      keys: [
        { key: 'sk-sim…aaaa', project: 'proj_sk-sim…aaaa', revoked: false },
        { key: 'sk-sim…bbbb', project: 'proj_sk-sim…bbbb', revoked: true },
      ],
    });
    expect((await sim('GET', '/stats')).body.by_key['sk-sim…bbbb']).toMatchObject({ requests: 2, creates: 1, rejected: 1 });
  });

  it('scopes responses, files and conversations to the project of the key that created them', async () => {
    const { client, sim } = await start(['sk-sim-key-one-aaaa', 'shared:sk-sim-key-two-bbbb', 'shared:sk-sim-key-three-cccc']);
    const one = client('sk-sim-key-one-aaaa');
    const two = client('sk-sim-key-two-bbbb');
    const three = client('sk-sim-key-three-cccc');

    const response = await two.responses.create(quick);
    // Another key of the same project reaches it; a key of another project does not.
    expect((await three.responses.retrieve(response.id)).id).toBe(response.id);
    expect((await failure(one.responses.retrieve(response.id)))?.status).toBe(404);
    expect((await failure(one.responses.cancel(response.id)))?.status).toBe(404);
    expect((await failure(one.responses.create({ ...quick, previous_response_id: response.id })))?.status).toBe(404);

    const conversation = await one.conversations.create({});
    expect((await failure(two.conversations.retrieve(conversation.id)))?.status).toBe(404);
    expect((await failure(two.responses.create({ ...quick, conversation: conversation.id })))?.status).toBe(404);
    const file = await one.files.create({ file: new File(['hello'], 'a.txt'), purpose: 'user_data' });
    expect((await failure(two.files.retrieve(file.id)))?.status).toBe(404);
    expect((await one.files.retrieve(file.id)).id).toBe(file.id);

    expect((await sim('GET', `/keys/objects/${response.id}`)).body).toEqual({
      id: response.id,
      project: 'shared',
      created_with: 'sk-sim…bbbb',
      used_with: ['sk-sim…bbbb', 'sk-sim…cccc'],
    });
    expect((await sim('GET', '/stats')).body.by_key['sk-sim…aaaa'].other_project).toBe(3);
    expect((await sim('GET', '/stats')).body.by_key['sk-sim…bbbb'].other_project).toBe(3);

    // A reset returns to the starting keys and forgets the objects' projects.
    await sim('POST', '/keys/sk-sim-key-one-aaaa/revoke');
    await sim('POST', '/reset');
    expect((await sim('GET', '/keys')).body.keys[0].revoked).toBe(false);
    expect((await sim('GET', `/keys/objects/${response.id}`)).status).toBe(404);
  });

  it('streams: a response created with stream=true is bound to its key’s project too', async () => {
    const { client } = await start(['sk-sim-key-one-aaaa', 'sk-sim-key-two-bbbb']);
    const stream = await client('sk-sim-key-one-aaaa').responses.create({ ...quick, stream: true });
    let id: string | undefined;
    for await (const event of stream) {
      if (event.type === 'response.created') {
        id = event.response.id;
        break;
      }
    }
    expect(id).toMatch(/^resp_/);
    expect((await failure(client('sk-sim-key-two-bbbb').responses.retrieve(id!)))?.status).toBe(404);
    expect((await client('sk-sim-key-one-aaaa').responses.retrieve(id!)).id).toBe(id);
  });

  it('takes SIM_API_KEYS from the environment', () => {
    expect(loadEnv({ SIM_API_KEYS: 'sk-a, proj_x:sk-b' }).apiKeys).toEqual(['sk-a', 'proj_x:sk-b']);
    expect(loadEnv({}).apiKeys).toEqual([]);
  });

  it('refuses a malformed key list at POST /sim/keys, and [] accepts any key again', async () => {
    const { client, sim } = await start(['sk-sim-key-one-aaaa']);
    expect((await sim('POST', '/keys', { keys: 'sk-x' })).status).toBe(400);
    expect((await sim('POST', '/keys', { keys: [] })).body).toEqual({ enforced: false, keys: [] });
    await client('sk-whatever-dddd').responses.create(quick);
  });
});
