/**
 * The keyring on its own: the keys file's format (and its errors, which never quote the file),
 * which key a create and a call about an existing object get, rejection, and re-reading the
 * file when it changes or on reload().
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createKeyring, type Keyring, parseProviderKeys, ProviderKeysFileError } from '../src/index.ts';

const dirs: string[] = [];
const keyrings: Keyring[] = [];
afterEach(() => {
  for (const k of keyrings.splice(0)) k.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function keysFile(keys: unknown): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'longhaul-keys-'));
  dirs.push(dir);
  const file = path.join(dir, 'keys.json');
  writeFileSync(file, typeof keys === 'string' ? keys : JSON.stringify(keys));
  return file;
}

/** Replace the file as a secret mount or an editor does: write aside, rename over it. */
function replaceFile(file: string, keys: unknown): void {
  const next = `${file}.next`;
  writeFileSync(next, JSON.stringify(keys));
  renameSync(next, file);
}

function recordingLogger() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; message: string }> = [];
  const at = (level: string) => (fields: object, message: string) => lines.push({ level, fields: fields as Record<string, unknown>, message });
  return { lines, logger: { info: at('info'), warn: at('warn'), error: at('error') } };
}

function keyring(options: Parameters<typeof createKeyring>[0]): Keyring {
  const k = createKeyring(options);
  keyrings.push(k);
  return k;
}

const until = async (what: string, probe: () => boolean, timeoutMs = 5_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('parseProviderKeys', () => {
  it('reads ids, keys, base URLs, organizations, projects and retired flags', () => {
    const parsed = parseProviderKeys(
      JSON.stringify([
        { id: 'primary', key: 'sk-one', base_url: 'https://eu.api.openai.com/v1', organization: 'org-1', project: 'proj_1' },
        { id: 'old', key: 'sk-two', retired: true },
      ]),
    );
    expect(parsed).toEqual({
      ok: true,
      keys: [
        { id: 'primary', apiKey: 'sk-one', baseURL: 'https://eu.api.openai.com/v1', organization: 'org-1', project: 'proj_1', retired: false },
        { id: 'old', apiKey: 'sk-two', baseURL: undefined, organization: null, project: null, retired: true },
      ],
    });
  });

  it('refuses a bad file with a message that names the entry and field, never the secret', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['[{"id": "a", "key": "sk-secret-in-bad-json"', /^not valid JSON/],
      [{ id: 'a', key: 'sk-secret' }, /^must be a JSON array/],
      [[], /lists no key/],
      [[{ key: 'sk-secret' }], /^entry 1: 'id'/],
      [[{ id: 'has space', key: 'sk-secret' }], /^entry 1: 'id'/],
      [[{ id: 'a' }], /^entry 1: 'key'/],
      [[{ id: 'a', key: 'sk-secret', retired: 'yes' }], /^entry 1: 'retired'/],
      [[{ id: 'a', key: 'sk-secret', base_url: 'not a url' }], /^entry 1: 'base_url'/],
      [[{ id: 'a', key: 'sk-secret', retire: true }], /^entry 1: unknown field 'retire'/],
      [
        [
          { id: 'a', key: 'sk-secret' },
          { id: 'a', key: 'sk-secret-2' },
        ],
        /^entry 2: the id 'a' is used twice/,
      ],
    ];
    for (const [content, message] of cases) {
      const parsed = parseProviderKeys(typeof content === 'string' ? content : JSON.stringify(content));
      expect(parsed.ok, JSON.stringify(content)).toBe(false);
      if (parsed.ok) continue;
      expect(parsed.error).toMatch(message);
      expect(parsed.error).not.toContain('sk-secret');
    }
  });
});

describe('a keyring', () => {
  it('of OPENAI_API_KEY alone is the one key `default`, which also serves rows without a key id', () => {
    const k = keyring({ apiKey: 'sk-only' });
    expect(k.forCreate()?.id).toBe('default');
    expect(k.forObject(null)?.apiKey).toBe('sk-only');
    expect(k.forObject('default')?.apiKey).toBe('sk-only');
    expect(k.forObject('other')).toBeUndefined();
  });

  it('creates with the active keys in turn, serves existing objects with retired ones, and knows no removed id', () => {
    const file = keysFile([
      { id: 'a', key: 'sk-a' },
      { id: 'b', key: 'sk-b' },
      { id: 'old', key: 'sk-old', retired: true },
    ]);
    const k = keyring({ file, watchIntervalMs: 0 });
    const picks = Array.from({ length: 4 }, () => k.forCreate()?.id);
    expect(picks).toEqual(['a', 'b', 'a', 'b']);
    expect(k.forCreate(new Set(['a']))?.id).toBe('b');
    expect(k.forCreate(new Set(['a', 'b']))).toBeNull();
    expect(k.forObject('old')?.apiKey).toBe('sk-old');
    // A create that refers to objects of a retired key is made with that key.
    expect(k.forCreate(undefined, 'old')?.id).toBe('old');
    expect(k.forObject('gone')).toBeUndefined();
    // Null is `default`; with several keys and none called so, it is no key.
    expect(k.forObject(null)).toBeUndefined();
    expect(k.describe()).toEqual([
      { id: 'a', state: 'active' },
      { id: 'b', state: 'active' },
      { id: 'old', state: 'retired' },
    ]);
  });

  it('takes a rejected key out of rotation once (one log line and one metric), until the file gives it a new secret', async () => {
    const file = keysFile([
      { id: 'a', key: 'sk-a' },
      { id: 'b', key: 'sk-b' },
    ]);
    const { lines, logger } = recordingLogger();
    const rejected: string[] = [];
    const counts: Array<Record<string, number>> = [];
    const metrics = { providerKeyRejected: (id: string) => rejected.push(id), providerKeys: (c: Record<string, number>) => counts.push(c) };
    const k = keyring({ file, watchIntervalMs: 20, logger, metrics });
    const a = k.forObject('a')!;
    k.reject(a, { operation: 'create', requestId: 'req_1' });
    k.reject(a, { operation: 'retrieve', requestId: 'req_2' });
    expect(rejected).toEqual(['a']);
    expect(counts.at(-1)).toEqual({ active: 1, retired: 0, rejected: 1 });
    expect(lines.filter((l) => l.fields.code === 'provider_key_rejected')).toEqual([
      { level: 'error', fields: expect.objectContaining({ key_id: 'a', operation: 'create', request_id: 'req_1' }), message: expect.any(String) },
    ]);
    expect([k.forCreate()?.id, k.forCreate()?.id]).toEqual(['b', 'b']);
    // Still the key of what it created: calls about those keep using it.
    expect(k.forObject('a')?.apiKey).toBe('sk-a');

    // The file changes, the same key again: still rejected. A new key for the id: back in rotation.
    replaceFile(file, [
      { id: 'a', key: 'sk-a' },
      { id: 'b', key: 'sk-b' },
      { id: 'c', key: 'sk-c' },
    ]);
    await until('the new file', () => k.describe().length === 3);
    expect(k.describe()).toEqual([
      { id: 'a', state: 'rejected' },
      { id: 'b', state: 'active' },
      { id: 'c', state: 'active' },
    ]);
    replaceFile(file, [
      { id: 'a', key: 'sk-a-new' },
      { id: 'b', key: 'sk-b' },
    ]);
    await until('the new key', () => k.describe().length === 2);
    expect(k.describe()).toEqual([
      { id: 'a', state: 'active' },
      { id: 'b', state: 'active' },
    ]);
    expect(k.forObject('a')?.apiKey).toBe('sk-a-new');

    // reload() (SIGHUP) gives rejected keys another chance.
    k.reject(k.forObject('b')!, { operation: 'create', requestId: null });
    expect(k.describe()[1]).toEqual({ id: 'b', state: 'rejected' });
    await expect(k.reload('sighup')).resolves.toBe(true);
    expect(k.describe()[1]).toEqual({ id: 'b', state: 'active' });
    expect(JSON.stringify(lines)).not.toMatch(/sk-/);
  });

  it('re-reads the file when it changes, and keeps the keys it has when the new file is bad', async () => {
    const file = keysFile([{ id: 'k1', key: 'sk-1' }]);
    const { lines, logger } = recordingLogger();
    const k = keyring({ file, watchIntervalMs: 20, logger });
    expect(k.forCreate()?.id).toBe('k1');

    replaceFile(file, [
      { id: 'k1', key: 'sk-1', retired: true },
      { id: 'k2', key: 'sk-2' },
    ]);
    await until('the rotation to be picked up', () => k.forCreate()?.id === 'k2');
    expect(k.forObject('k1')?.apiKey).toBe('sk-1');
    expect(lines.filter((l) => l.fields.code === 'provider_keys_loaded').at(-1)?.fields).toMatchObject({
      reason: 'file_changed',
      keys: [
        { id: 'k1', state: 'retired' },
        { id: 'k2', state: 'active' },
      ],
    });

    writeFileSync(file, '[{"id": "k3", "key": "sk-leaked-if-quoted"');
    await until('the bad file to be reported', () => lines.some((l) => l.fields.code === 'provider_keys_file_invalid'));
    expect(k.forCreate()?.id).toBe('k2');
    expect(k.describe().map((d) => d.id)).toEqual(['k1', 'k2']);
    rmSync(file);
    await until('the missing file to be reported', () => lines.some((l) => l.fields.code === 'provider_keys_file_unreadable'));
    expect(k.forCreate()?.id).toBe('k2');
    expect(JSON.stringify(lines)).not.toMatch(/sk-/);
  });

  it('checks the file again for an id it lacks: a removed id is missing, one never loaded here only not known yet', async () => {
    const file = keysFile([{ id: 'k1', key: 'sk-1' }]);
    const k = keyring({ file, watchIntervalMs: 0 });
    // Another process read the new file first and created with k2: this one reads it on demand.
    replaceFile(file, [
      { id: 'k1', key: 'sk-1', retired: true },
      { id: 'k2', key: 'sk-2' },
    ]);
    expect(k.forObject('k2')).toBeUndefined();
    expect(await k.resolve('k2')).toMatchObject({ id: 'k2', apiKey: 'sk-2' });
    replaceFile(file, [{ id: 'k2', key: 'sk-2' }]);
    await k.reload('test');
    expect(await k.resolve('k1')).toBe('removed');
    expect(await k.resolve('k7')).toBe('unknown');
    const impatient = keyring({ file, watchIntervalMs: 0, unknownKeyGraceMs: 0 });
    expect(await impatient.resolve('k7')).toBe('removed');
  });

  it('refuses a bad file at start-up with a coded error', () => {
    expect(() => createKeyring({ file: keysFile('[]') })).toThrow(ProviderKeysFileError);
    expect(() => createKeyring({ file: '/nonexistent/keys.json' })).toThrow(expect.objectContaining({ code: 'provider_keys_file_unreadable' }));
    expect(() => createKeyring({ file: keysFile([{ id: 'a' }]) })).toThrow(expect.objectContaining({ code: 'provider_keys_file_invalid' }));
  });
});
