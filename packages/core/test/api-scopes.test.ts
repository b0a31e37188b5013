import { describe, expect, it } from 'vitest';
import { isSubset, parseScopes, requiredScope } from '../src/index.ts';

const ALL_READS = ['jobs:read', 'prompts:read', 'pipelines:read', 'files:read', 'evals:read', 'webhooks:read', 'usage:read', 'keys:read'];

describe('parseScopes', () => {
  it('accepts every scope and gives them back in one canonical order', () => {
    expect(parseScopes(['prompts:write', 'jobs:read'])).toEqual({ ok: true, scopes: ['jobs:read', 'prompts:write'] });
    expect(parseScopes(['usage:read', 'keys:write', 'webhooks:read', 'files:write'])).toEqual({ ok: true, scopes: ['files:write', 'webhooks:read', 'usage:read', 'keys:write'] });
  });

  it('expands read_only to every read scope', () => {
    expect(parseScopes(['read_only'])).toEqual({ ok: true, scopes: ALL_READS });
    expect(parseScopes(['read_only', 'jobs:write'])).toEqual({ ok: true, scopes: ['jobs:write', ...ALL_READS.slice(1)] });
  });

  it('keeps * alone, drops duplicates and a read its write already implies', () => {
    expect(parseScopes(['jobs:read', '*'])).toEqual({ ok: true, scopes: ['*'] });
    expect(parseScopes(['jobs:read', 'jobs:read', 'jobs:write'])).toEqual({ ok: true, scopes: ['jobs:write'] });
  });

  it('refuses an unknown scope, naming it and where it is', () => {
    for (const [scopes, index, scope] of [
      [['jobs:read', 'jobs:delete'], 1, 'jobs:delete'],
      [['usage:write'], 0, 'usage:write'],
      [['admin'], 0, 'admin'],
      [['Jobs:read'], 0, 'Jobs:read'],
      [[''], 0, ''],
      [['read-only'], 0, 'read-only'],
    ] as const) {
      const parsed = parseScopes(scopes);
      expect(parsed.ok, scope).toBe(false);
      if (parsed.ok) continue;
      expect(parsed.index).toBe(index);
      expect(parsed.message).toContain(`'${scope}'`);
    }
  });

  it('refuses an empty list', () => {
    expect(parseScopes([])).toMatchObject({ ok: false, index: null });
  });
});

describe('requiredScope', () => {
  it('maps each resource prefix to its scope: GET and HEAD read, everything else writes', () => {
    const cases: Array<[string, string, string]> = [
      ['GET', '/v1/jobs', 'jobs:read'],
      ['HEAD', '/v1/jobs/job_123', 'jobs:read'],
      ['POST', '/v1/jobs', 'jobs:write'],
      ['POST', '/v1/jobs/job_1/cancel', 'jobs:write'],
      ['DELETE', '/v1/jobs/job_1', 'jobs:write'],
      ['GET', '/v1/jobs/job_1/stream', 'jobs:read'],
      ['POST', '/v1/responses', 'jobs:write'],
      ['GET', '/v1/responses/resp_1', 'jobs:read'],
      ['DELETE', '/v1/cache', 'jobs:write'],
      ['GET', '/v1/prompts/prm_1/versions', 'prompts:read'],
      ['PATCH', '/v1/prompts/prm_1', 'prompts:write'],
      ['POST', '/v1/pipelines/pipe_1/runs', 'pipelines:write'],
      ['GET', '/v1/runs/run_1/stream', 'pipelines:read'],
      ['POST', '/v1/files', 'files:write'],
      ['GET', '/v1/conversations/conv_1/items', 'files:read'],
      ['POST', '/v1/datasets', 'evals:write'],
      ['GET', '/v1/evals/eval_1/results', 'evals:read'],
      ['POST', '/v1/prompts/prm_1/rollout/pause', 'prompts:write'],
      ['POST', '/v1/webhook-endpoints', 'webhooks:write'],
      ['GET', '/v1/deliveries', 'webhooks:read'],
      ['POST', '/v1/deliveries/dlv_1/retry', 'webhooks:write'],
      ['GET', '/v1/usage', 'usage:read'],
      ['GET', '/v1/api-keys', 'keys:read'],
      ['POST', '/v1/api-keys', 'keys:write'],
      ['DELETE', '/v1/api-keys/key_1', 'keys:write'],
    ];
    for (const [method, path, scope] of cases) expect(requiredScope(method, path), `${method} ${path}`).toBe(scope);
  });

  it('needs write to read the callback signing secret (reading it lets one sign callbacks)', () => {
    expect(requiredScope('GET', '/v1/callback-secret')).toBe('webhooks:write');
  });

  it('a read-only resource needs only its read scope, whatever the method', () => {
    expect(requiredScope('POST', '/v1/usage')).toBe('usage:read');
  });

  it('matches whole path segments, in any case, as Express routes them', () => {
    expect(requiredScope('GET', '/v1/JOBS/job_1')).toBe('jobs:read');
    expect(requiredScope('GET', '/v1/jobs/')).toBe('jobs:read');
    expect(requiredScope('get', '/v1/jobs')).toBe('jobs:read');
    expect(requiredScope('GET', '/v1/jobsx')).toBe('*');
  });

  it('a path no resource claims needs * (a route missing from the table is closed to restricted keys)', () => {
    expect(requiredScope('GET', '/v1/nothing')).toBe('*');
    expect(requiredScope('GET', '/v1')).toBe('*');
    expect(requiredScope('GET', '/v1/%6Aobs')).toBe('*');
  });
});

describe('isSubset', () => {
  it('* holds everything, and only * holds *', () => {
    expect(isSubset(['*'], ['*'])).toBe(true);
    expect(isSubset(['jobs:write', 'keys:write'], ['*'])).toBe(true);
    expect(isSubset(['*'], ['jobs:write', 'prompts:write', 'files:write', 'webhooks:write', 'usage:read', 'keys:write'])).toBe(false);
  });

  it('write implies read of the same resource, not of another', () => {
    expect(isSubset(['jobs:read'], ['jobs:write'])).toBe(true);
    expect(isSubset(['jobs:write'], ['jobs:read'])).toBe(false);
    expect(isSubset(['prompts:read'], ['jobs:write'])).toBe(false);
  });

  it('read_only holds every read and no write', () => {
    expect(isSubset(ALL_READS, ['read_only'])).toBe(true);
    expect(isSubset(['read_only'], ALL_READS)).toBe(true);
    expect(isSubset(['read_only'], ['jobs:read'])).toBe(false);
    expect(isSubset(['jobs:write'], ['read_only'])).toBe(false);
  });

  it('an empty request is held by anything; an unknown scope is held by nothing but *', () => {
    expect(isSubset([], [])).toBe(true);
    expect(isSubset(['jobs:delete'], ['jobs:write'])).toBe(false);
    expect(isSubset(['jobs:delete'], ['*'])).toBe(true);
  });
});
