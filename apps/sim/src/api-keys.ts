/**
 * API keys at the simulator. By default any bearer key is accepted, as before. Once keys are
 * configured (SIM_API_KEYS, or `POST /sim/keys` at run time) only those are: an unknown or revoked
 * key is answered 401 `invalid_api_key` in OpenAI's shape. Each configured key belongs to a
 * project (`project:key`, else a project of its own), and as at OpenAI a response, file or
 * conversation created with a key of one project is not found (404) with a key of another, a
 * create that refers to one (`previous_response_id`, `conversation`) included. So a client that
 * calls with the wrong key after a rotation sees what it would see at OpenAI.
 *
 * Per-key request counts are kept either way (`by_key` of `GET /sim/stats`), under the key's
 * masked form (`sk-sim…ab12`, as OpenAI's own error messages show a key), and for each object
 * the keys that created and used it (`GET /sim/keys/objects/{id}`).
 *
 * Invariant: objects are bound to a project when their create is answered (the JSON body, or a
 * stream's first event), so a client never holds an id the binding has not seen.
 */
import express, { type RequestHandler, type Router } from 'express';
import { z } from 'zod';
import { conversationNotFound } from './conversations.ts';
import { ApiError, invalidRequest, responseNotFound } from './errors.ts';
import { noSuchFile } from './files.ts';
import type { Simulator } from './simulator.ts';
import type { KeyStats } from './stats.ts';

/** Distinct keys counted before the rest are counted as `other`. */
const MAX_COUNTED_KEYS = 1_000;
/** Objects whose project is remembered, oldest forgotten first (as the simulator forgets responses). */
const MAX_BOUND_OBJECTS = 200_000;

const OBJECT_PATH = /^\/(responses|files|conversations)\/([^/]+)/;

/** As OpenAI's messages show a key: its start and its last four characters. */
export function maskKey(key: string): string {
  return key.length <= 12 ? `${key.slice(0, 2)}…${key.slice(-2)}` : `${key.slice(0, 6)}…${key.slice(-4)}`;
}

/** `project:key` or `key` (a project of its own). */
function parseEntry(entry: string): { key: string; project: string } {
  const at = entry.indexOf(':');
  return at > 0 ? { project: entry.slice(0, at), key: entry.slice(at + 1) } : { project: `proj_${maskKey(entry)}`, key: entry };
}

interface Bound {
  project: string;
  createdWith: string;
  usedWith: Set<string>;
}

export class ApiKeys {
  readonly #initial: string[];
  /** Key → project; empty: any key is accepted and nothing is scoped. */
  #keys = new Map<string, string>();
  #revoked = new Set<string>();
  #objects = new Map<string, Bound>();

  constructor(entries: readonly string[] = []) {
    this.#initial = [...entries];
    this.configure(entries);
  }

  /** Replace the accepted keys (empty: accept any); revocations are forgotten. */
  configure(entries: readonly string[]): void {
    this.#keys = new Map(entries.map(parseEntry).map((e) => [e.key, e.project]));
    this.#revoked.clear();
  }

  reset(): void {
    this.configure(this.#initial);
    this.#objects.clear();
  }

  /** False when the key is not configured. */
  revoke(key: string): boolean {
    if (!this.#keys.has(key)) return false;
    this.#revoked.add(key);
    return true;
  }

  describe(): { enforced: boolean; keys: Array<{ key: string; project: string; revoked: boolean }> } {
    return {
      enforced: this.#keys.size > 0,
      keys: [...this.#keys].map(([key, project]) => ({ key: maskKey(key), project, revoked: this.#revoked.has(key) })),
    };
  }

  object(id: string): { id: string; project: string; created_with: string; used_with: string[] } | null {
    const bound = this.#objects.get(id);
    return bound ? { id, project: bound.project, created_with: bound.createdWith, used_with: [...bound.usedWith] } : null;
  }

  /** For the `/v1` router, after the body parser and before the routes. */
  middleware(sim: Simulator): RequestHandler {
    return (req, res, next) => {
      const key = /^Bearer\s+(\S+)/i.exec(req.get('authorization') ?? '')?.[1];
      // No key at all: the router answers OpenAI's "You didn't provide an API key".
      if (key === undefined) return next();
      const label = maskKey(key);
      const counts = countsFor(sim, label);
      counts.requests += 1;
      const target = OBJECT_PATH.exec(req.path);
      const isCreate = req.method === 'POST' && /^\/(responses|files|conversations)\/?$/.test(req.path);
      if (req.method === 'POST' && /^\/responses\/?$/.test(req.path)) counts.creates += 1;
      if (req.method === 'GET' && target?.[1] === 'responses' && req.path.split('/').length === 3) counts.retrieves += 1;
      if (req.method === 'POST' && target?.[1] === 'responses' && req.path.endsWith('/cancel')) counts.cancels += 1;
      if (this.#keys.size === 0) return next();

      const project = this.#keys.get(key);
      if (project === undefined || this.#revoked.has(key)) {
        counts.rejected += 1;
        return next(incorrectKey(label));
      }
      const problem = this.#otherProject(req.method, req.path, req.body, project);
      if (problem) {
        counts.other_project += 1;
        return next(problem.error);
      }
      if (target) this.#objects.get(target[2]!)?.usedWith.add(label);
      if (isCreate) this.#bindOnAnswer(res, project, label);
      next();
    };
  }

  /** The 404 a key of `project` gets for an object of another project (or a create referring to one). */
  #otherProject(method: string, path: string, body: unknown, project: string): { error: ApiError } | null {
    const target = OBJECT_PATH.exec(path);
    if (target) {
      const [, kind, id] = target as unknown as [string, 'responses' | 'files' | 'conversations', string];
      const bound = this.#objects.get(id);
      if (!bound || bound.project === project) return null;
      if (kind === 'responses') return { error: responseNotFound(id) };
      if (kind === 'files') return { error: noSuchFile(id) };
      return { error: conversationNotFound(id, null) };
    }
    if (method !== 'POST' || !/^\/responses\/?$/.test(path) || typeof body !== 'object' || body === null) return null;
    const { previous_response_id: previous, conversation } = body as { previous_response_id?: unknown; conversation?: unknown };
    if (typeof previous === 'string' && this.#boundElsewhere(previous, project)) {
      return {
        error: new ApiError({
          status: 404,
          type: 'invalid_request_error',
          message: `Previous response with id '${previous}' not found.`,
          param: 'previous_response_id',
          code: 'previous_response_not_found',
        }),
      };
    }
    const conversationId = typeof conversation === 'string' ? conversation : (conversation as { id?: unknown } | null | undefined)?.id;
    if (typeof conversationId === 'string' && this.#boundElsewhere(conversationId, project)) return { error: conversationNotFound(conversationId, 'conversation') };
    return null;
  }

  #boundElsewhere(id: string, project: string): boolean {
    const bound = this.#objects.get(id);
    return bound !== undefined && bound.project !== project;
  }

  /** Bind the created object to the project once its id is sent: a JSON body, or a stream's first event. */
  #bindOnAnswer(res: express.Response, project: string, label: string): void {
    const bind = (id: unknown) => {
      if (typeof id !== 'string' || this.#objects.has(id)) return;
      this.#objects.set(id, { project, createdWith: label, usedWith: new Set([label]) });
      if (this.#objects.size > MAX_BOUND_OBJECTS) this.#objects.delete(this.#objects.keys().next().value!);
    };
    const json = res.json.bind(res);
    res.json = (body: unknown) => {
      if (res.statusCode < 300) bind((body as { id?: unknown } | null)?.id);
      return json(body);
    };
    const write = res.write.bind(res) as (chunk: unknown, ...rest: unknown[]) => boolean;
    let first = true;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (first) {
        first = false;
        // The first event is response.created, and the first id in it is the response's.
        bind(/"id":"(resp_[A-Za-z0-9]+)"/.exec(String(chunk))?.[1]);
      }
      return write(chunk, ...rest);
    }) as typeof res.write;
  }
}

function countsFor(sim: Simulator, label: string): KeyStats {
  const byKey = sim.stats.by_key;
  const name = label in byKey || Object.keys(byKey).length < MAX_COUNTED_KEYS ? label : 'other';
  byKey[name] ??= { requests: 0, creates: 0, retrieves: 0, cancels: 0, rejected: 0, other_project: 0 };
  return byKey[name];
}

/** OpenAI's answer for a key it does not accept. */
function incorrectKey(masked: string): ApiError {
  return new ApiError({
    status: 401,
    type: 'invalid_request_error',
    message: `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    code: 'invalid_api_key',
  });
}

const keysBody = z.strictObject({ keys: z.array(z.string().min(1)) });

/** `/sim/keys`: read, replace (`{"keys": ["k1", "proj_a:k2"]}`; [] accepts any key again), revoke one, look up an object's keys. */
export function keysRouter(keys: ApiKeys): Router {
  const router = express.Router();
  router.get('/', (_req, res) => {
    res.json(keys.describe());
  });
  router.post('/', (req, res) => {
    const parsed = keysBody.safeParse(req.body);
    if (!parsed.success) throw invalidRequest('Expected {"keys": ["key", "project:key", ...]}.', 'keys', 'invalid_value');
    keys.configure(parsed.data.keys);
    res.json(keys.describe());
  });
  router.post('/:key/revoke', (req, res) => {
    const key = req.params['key'] as string;
    if (!keys.revoke(key)) throw new ApiError({ status: 404, type: 'invalid_request_error', message: 'No such key is configured.', code: 'key_not_found' });
    res.json({ key: maskKey(key), revoked: true });
  });
  router.get('/objects/:id', (req, res) => {
    const found = keys.object(req.params['id'] as string);
    if (!found) throw new ApiError({ status: 404, type: 'invalid_request_error', message: 'No object with that id was created with a configured key.', code: 'not_found' });
    res.json(found);
  });
  return router;
}
