/**
 * The OpenAI keys (or projects) Longhaul calls the provider with, and their rotation.
 *
 * Design note: every key has an id, and the id (never the key) is recorded with each response,
 * file and conversation created with it (`provider_key_id` of jobs, files and conversations).
 * Three rules follow from it:
 *   - a new object is created with an active key: neither `retired` nor rejected, taken in turn
 *     (round robin, so the provider's rate limits of several keys or projects add up);
 *   - a call about an existing object uses the key it was created with, retired or rejected, as
 *     long as its id is in the keyring: a retired key keeps serving what it created until that
 *     finishes, and an id that is no longer there is the caller's `provider_key_missing`. Processes
 *     read a changed file at different moments, so an id a process has never loaded is only
 *     not known *yet* (`unknown`, retried) for `unknownKeyGraceMs`, its file checked again at once;
 *   - a key the provider answers 401 for is rejected: out of rotation for creates (logged and
 *     counted once) until the file gives that id another key, `reload()` is called (SIGHUP: the
 *     operator says it is fixed) or the process restarts.
 * A row from before keys had ids (null) belongs to the key `default`, or to the only key.
 *
 * With a file (OPENAI_API_KEYS_FILE) the keyring follows it: its mtime, ctime, size and inode are
 * checked every `watchIntervalMs` (a poll, because fs.watch misses the atomic rename by which
 * editors and secret mounts replace a file) and `reload()` re-reads it at once. A file that cannot
 * be read or parsed is logged with a code and the keys already loaded stay in use; at start-up it
 * is an error. Nothing about a file ever quotes it: it holds secrets.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';

export interface ProviderKey {
  /** What jobs, files and conversations record. Letters, digits, `.`, `_` and `-`, up to 64. */
  id: string;
  apiKey: string;
  /** Default: the provider's `baseURL`. */
  baseURL?: string;
  /** OpenAI-Organization / OpenAI-Project. null: none; undefined: the SDK's default (OPENAI_ORG_ID, OPENAI_PROJECT_ID). */
  organization?: string | null;
  project?: string | null;
  /** Serves the objects it created; creates nothing new. */
  retired: boolean;
}

export type ProviderKeyState = 'active' | 'retired' | 'rejected';

/** The id of the key of OPENAI_API_KEY alone, and of rows recorded without a key id. */
export const DEFAULT_PROVIDER_KEY_ID = 'default';

/** What the keyring logs with (pino's signature); it never logs a key. */
export interface KeyringLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface KeyringOptions {
  /** A JSON file of keys: `[{"id", "key", "base_url"?, "organization"?, "project"?, "retired"?}]`. */
  file?: string;
  /** Without `file`: the one key, id `default`. */
  apiKey?: string;
  /** How often the file is checked for a change; 0: only on `reload()`. Default 1 000 ms. */
  watchIntervalMs?: number;
  /**
   * How long a key id this process has never loaded counts as not known *yet* (processes read a
   * changed file at different moments: another may have created with a key this one has not
   * read) before it counts as removed. Default 120 000 ms.
   */
  unknownKeyGraceMs?: number;
  logger?: KeyringLogger;
  /** Told of rejections and of every change in how many keys are in which state (@longhaul/metrics' Metrics is one). */
  metrics?: KeyringMetrics;
}

export interface KeyringMetrics {
  /** A key was taken out of rotation because the provider rejected it (401). */
  providerKeyRejected(keyId: string): void;
  /** After every change (loaded, reloaded, a key rejected): how many keys are in which state. */
  providerKeys(counts: Record<ProviderKeyState, number>): void;
}

export interface Keyring {
  /**
   * The key to create a new object with: `prefer` if it is in the keyring and not rejected (the
   * key of objects the request refers to, retired or not), else the next active key; never one in
   * `exclude`. Null when none is left.
   */
  forCreate(exclude?: ReadonlySet<string>, prefer?: string | null): ProviderKey | null;
  /** The key an existing object was created with (null: `default`, or the only key); undefined when that id is not in the keyring. */
  forObject(id: string | null | undefined): ProviderKey | undefined;
  /**
   * As `forObject`, but an id not in the keyring has the file checked again first, and is then
   * `removed` (this process loaded it before, or has not seen it for `unknownKeyGraceMs`) or
   * `unknown` (never loaded here: another process may have read a newer file; ask again later).
   */
  resolve(id: string | null | undefined): Promise<ProviderKey | 'removed' | 'unknown'>;
  /** The keys not rejected, active first: for an object whose key is not known. */
  usable(): ProviderKey[];
  /** The provider answered 401 for `key`: out of rotation for creates. Idempotent. */
  reject(key: ProviderKey, detail: { operation: string; requestId: string | null }): void;
  /** Every key's id and state, in file order. */
  describe(): Array<{ id: string; state: ProviderKeyState }>;
  /** Re-read the file now and give rejected keys another chance; false (logged, previous keys kept) when it cannot be used. */
  reload(reason?: string): Promise<boolean>;
  /** Stop watching the file. Idempotent. */
  close(): void;
}

export type ProviderKeysFileErrorCode = 'provider_keys_file_unreadable' | 'provider_keys_file_invalid';

export class ProviderKeysFileError extends Error {
  readonly code: ProviderKeysFileErrorCode;
  constructor(message: string, code: ProviderKeysFileErrorCode) {
    super(message);
    this.name = 'ProviderKeysFileError';
    this.code = code;
  }
}

const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const FIELDS = new Set(['id', 'key', 'base_url', 'organization', 'project', 'retired']);

/** The keys file's content, checked. Errors name the entry and the field, never a value. */
export function parseProviderKeys(text: string): { ok: true; keys: ProviderKey[] } | { ok: false; error: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    // V8's message quotes the text around the error: only the position is kept.
    const position = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
    return { ok: false, error: `not valid JSON${position ? ` (at position ${position})` : ''}` };
  }
  if (!Array.isArray(data)) return { ok: false, error: 'must be a JSON array of keys, e.g. [{"id": "primary", "key": "sk-..."}]' };
  if (data.length === 0) return { ok: false, error: 'lists no key' };
  const keys: ProviderKey[] = [];
  for (const [index, entry] of data.entries()) {
    const problem = (what: string) => ({ ok: false as const, error: `entry ${index + 1}: ${what}` });
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return problem('must be an object');
    const e = entry as Record<string, unknown>;
    const unknown = Object.keys(e).find((field) => !FIELDS.has(field));
    if (unknown !== undefined) return problem(`unknown field '${unknown.slice(0, 64)}' (known: ${[...FIELDS].join(', ')})`);
    if (typeof e.id !== 'string' || !KEY_ID.test(e.id)) return problem("'id' must be 1 to 64 letters, digits, '.', '_' or '-'");
    if (keys.some((k) => k.id === e.id)) return problem(`the id '${e.id}' is used twice`);
    if (typeof e.key !== 'string' || e.key.trim() === '') return problem("'key' must be a non-empty string");
    if (e.base_url !== undefined && !isHttpUrl(e.base_url)) return problem("'base_url' must be an http(s) URL");
    for (const field of ['organization', 'project'] as const) {
      if (e[field] !== undefined && e[field] !== null && (typeof e[field] !== 'string' || e[field] === '')) return problem(`'${field}' must be a non-empty string`);
    }
    if (e.retired !== undefined && typeof e.retired !== 'boolean') return problem("'retired' must be true or false");
    keys.push({
      id: e.id,
      apiKey: e.key,
      baseURL: e.base_url as string | undefined,
      organization: (e.organization as string | null | undefined) ?? null,
      project: (e.project as string | null | undefined) ?? null,
      retired: e.retired === true,
    });
  }
  return { ok: true, keys };
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Read and parse the file, throwing a ProviderKeysFileError (which never quotes the file). */
function keysFromText(file: string, text: string): ProviderKey[] {
  const parsed = parseProviderKeys(text);
  if (!parsed.ok) throw new ProviderKeysFileError(`OPENAI_API_KEYS_FILE ${file}: ${parsed.error}`, 'provider_keys_file_invalid');
  return parsed.keys;
}

function unreadable(file: string, err: unknown): ProviderKeysFileError {
  const code = (err as { code?: unknown }).code;
  return new ProviderKeysFileError(`OPENAI_API_KEYS_FILE ${file}: cannot be read (${typeof code === 'string' ? code : 'error'})`, 'provider_keys_file_unreadable');
}

/** What tells a changed file: a rename gives a new inode, an edit a new mtime or size. */
const signatureOf = (s: { mtimeMs: number; ctimeMs: number; size: number; ino: number }) => `${s.mtimeMs}:${s.ctimeMs}:${s.size}:${s.ino}`;

export function createKeyring(options: KeyringOptions): Keyring {
  const { file, logger } = options;
  let keys: ProviderKey[];
  let signature: string | null = null;
  if (file !== undefined) {
    let text: string;
    try {
      signature = signatureOf(statSync(file));
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw unreadable(file, err);
    }
    keys = keysFromText(file, text);
  } else if (options.apiKey) {
    keys = [{ id: DEFAULT_PROVIDER_KEY_ID, apiKey: options.apiKey, retired: false }];
  } else {
    throw new Error('createKeyring: give a keys file or an API key');
  }

  /** Every key id loaded since start: an id among them that is no longer in the file was removed. */
  const known = new Set(keys.map((k) => k.id));
  /** Rejected key ids, with the key that was rejected: a new key for the id is a fresh start. */
  const rejected = new Map<string, string>();
  let turn = 0;

  const isRejected = (key: ProviderKey) => rejected.get(key.id) === key.apiKey;
  const stateOf = (key: ProviderKey): ProviderKeyState => (isRejected(key) ? 'rejected' : key.retired ? 'retired' : 'active');
  const describe = () => keys.map((key) => ({ id: key.id, state: stateOf(key) }));
  const changed = () => {
    const counts: Record<ProviderKeyState, number> = { active: 0, retired: 0, rejected: 0 };
    for (const key of keys) counts[stateOf(key)] += 1;
    options.metrics?.providerKeys(counts);
    return counts;
  };

  /** `noticedBy`: what found the file changed, the periodic check or a lookup of a key id not loaded yet. */
  const loaded = (reason: string, noticedBy?: 'watch' | 'key_lookup') => {
    const counts = changed();
    logger?.info({ code: 'provider_keys_loaded', reason, noticed_by: noticedBy, keys: describe(), active: counts.active }, 'provider keys loaded');
    if (counts.active === 0) {
      logger?.warn({ code: 'no_active_provider_key', keys: describe() }, 'no active provider key: creates fail with no_provider_key until one is added');
    }
  };
  loaded('start');

  /** The last failure logged, so a file that stays bad is reported once, not every check. */
  let lastFailure: string | null = null;
  const failed = (err: ProviderKeysFileError, reason: string) => {
    if (lastFailure === err.message) return;
    lastFailure = err.message;
    logger?.error({ code: err.code, reason, err: { message: err.message } }, 'provider keys file not used: the keys loaded before stay in use');
  };

  /** One reload at a time: a SIGHUP during a watch check waits for it. */
  let reloading: Promise<boolean> = Promise.resolve(true);
  const reloadFile = (reason: string, forgetRejections: boolean, noticedBy?: 'watch' | 'key_lookup'): Promise<boolean> => {
    reloading = reloading.then(async () => {
      if (file === undefined) {
        if (forgetRejections && rejected.size > 0) {
          rejected.clear();
          loaded(reason);
        }
        return true;
      }
      let next: ProviderKey[];
      try {
        let text: string;
        try {
          signature = signatureOf(await stat(file));
          text = await readFile(file, 'utf8');
        } catch (err) {
          throw unreadable(file, err);
        }
        next = keysFromText(file, text);
      } catch (err) {
        if (!(err instanceof ProviderKeysFileError)) throw err;
        failed(err, reason);
        return false;
      }
      lastFailure = null;
      keys = next;
      for (const key of keys) known.add(key.id);
      if (forgetRejections) rejected.clear();
      for (const [id, apiKey] of rejected) if (!keys.some((k) => k.id === id && k.apiKey === apiKey)) rejected.delete(id);
      loaded(reason, noticedBy);
      return true;
    });
    return reloading;
  };

  /** Reload if the file changed since it was read; concurrent callers share one check. */
  let checking: Promise<void> | null = null;
  const check = (noticedBy: 'watch' | 'key_lookup'): Promise<void> => {
    if (file === undefined) return Promise.resolve();
    checking ??= (async () => {
      try {
        const now = await stat(file).then(signatureOf, () => 'missing');
        if (now !== signature) await reloadFile('file_changed', false, noticedBy);
      } finally {
        checking = null;
      }
    })();
    return checking;
  };
  const watchMs = options.watchIntervalMs ?? 1_000;
  const timer = file !== undefined && watchMs > 0 ? setInterval(() => void check('watch'), watchMs) : undefined;
  timer?.unref();

  /** When this process was first asked for a key id it has never loaded. */
  const unknownSince = new Map<string, number>();
  const unknownGraceMs = options.unknownKeyGraceMs ?? 120_000;
  const idOf = (id: string | null | undefined) => id || DEFAULT_PROVIDER_KEY_ID;
  const find = (id: string | null | undefined) => {
    if (id) return keys.find((k) => k.id === id);
    return keys.find((k) => k.id === DEFAULT_PROVIDER_KEY_ID) ?? (keys.length === 1 ? keys[0] : undefined);
  };

  return {
    forCreate(exclude, prefer) {
      if (prefer) {
        const preferred = keys.find((k) => k.id === prefer);
        if (preferred && !isRejected(preferred) && !exclude?.has(preferred.id)) return preferred;
      }
      const active = keys.filter((k) => !k.retired && !isRejected(k) && !exclude?.has(k.id));
      if (active.length === 0) return null;
      turn = (turn + 1) % Number.MAX_SAFE_INTEGER;
      return active[(turn - 1) % active.length]!;
    },
    forObject: find,
    async resolve(id) {
      const key = find(id) ?? (await check('key_lookup').then(() => find(id)));
      if (key) return key;
      const wanted = idOf(id);
      if (known.has(wanted)) return 'removed';
      if (unknownSince.size > 10_000) unknownSince.clear();
      const since = unknownSince.get(wanted) ?? Date.now();
      unknownSince.set(wanted, since);
      return Date.now() - since >= unknownGraceMs ? 'removed' : 'unknown';
    },
    usable() {
      const usable = keys.filter((k) => !isRejected(k));
      return [...usable.filter((k) => !k.retired), ...usable.filter((k) => k.retired)];
    },
    reject(key, detail) {
      if (isRejected(key) || !keys.some((k) => k.id === key.id && k.apiKey === key.apiKey)) return;
      rejected.set(key.id, key.apiKey);
      const counts = changed();
      logger?.error(
        { code: 'provider_key_rejected', key_id: key.id, operation: detail.operation, request_id: detail.requestId, active: counts.active },
        'the provider rejected a key (401): it is out of rotation',
      );
      options.metrics?.providerKeyRejected(key.id);
    },
    describe,
    reload: (reason = 'reload') => reloadFile(reason, true),
    close() {
      if (timer) clearInterval(timer);
    },
  };
}
