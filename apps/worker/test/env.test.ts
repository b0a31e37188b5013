import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { loadEnv } from '../src/env.ts';

const ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url));
const SIMULATOR = { OPENAI_BASE_URL: 'http://127.0.0.1:3100/v1' };

describe('loadEnv', () => {
  test('an empty value counts as unset: the default applies', () => {
    const env = loadEnv({ ...SIMULATOR, DATABASE_URL: '', REDIS_URL: '', SUBMIT_CONCURRENCY: '', COMPLETION_MODE: '', MODEL_PRICES: '', CALLBACK_RETRY_SCHEDULE_MS: '' });
    expect(env.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/longhaul');
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(env.SUBMIT_CONCURRENCY).toBe(20);
    expect(env.COMPLETION_MODE).toBe('hybrid');
    expect(env.CALLBACK_RETRY_SCHEDULE_MS).toBeUndefined();
  });

  test('an empty required value is reported missing, naming it', () => {
    expect(() => loadEnv({ OPENAI_API_KEY: '', OPENAI_BASE_URL: '' })).toThrow(/^invalid worker configuration: OPENAI_API_KEY: set OPENAI_API_KEY/);
  });

  test('a bad value is refused in one line naming the variable', () => {
    expect(() => loadEnv({ ...SIMULATOR, REDIS_URL: 'not a url' })).toThrow('invalid worker configuration: REDIS_URL: invalid URL');
    expect(() => loadEnv({ ...SIMULATOR, POLL_FACTOR: '0.5', COMPLETION_MODE: 'push' })).toThrow(
      /^invalid worker configuration: COMPLETION_MODE: invalid option: [^;\n]+; POLL_FACTOR: too small: [^;\n]+$/,
    );
  });

  test('Redis Cluster: REDIS_URL seeds it, the prefix defaults to {longhaul} and must hold a hash tag', () => {
    expect(loadEnv({ ...SIMULATOR }).QUEUE_PREFIX).toBe('longhaul');
    const env = loadEnv({ ...SIMULATOR, REDIS_CLUSTER: 'true', REDIS_CLUSTER_NODES: '10.0.0.2:6379, [::1]:7000' });
    expect(env).toMatchObject({ REDIS_CLUSTER: true, REDIS_CLUSTER_NODES: ['10.0.0.2:6379', '[::1]:7000'], QUEUE_PREFIX: '{longhaul}' });
    expect(loadEnv({ ...SIMULATOR, REDIS_CLUSTER: 'true', QUEUE_PREFIX: 'acme{lh}' }).QUEUE_PREFIX).toBe('acme{lh}');
    expect(() => loadEnv({ ...SIMULATOR, REDIS_CLUSTER: 'true', QUEUE_PREFIX: 'longhaul' })).toThrow(
      /^invalid worker configuration: QUEUE_PREFIX: on a Redis Cluster the prefix must contain a hash tag, e\.g\. \{longhaul\}/,
    );
    expect(() => loadEnv({ ...SIMULATOR, REDIS_CLUSTER: 'true', QUEUE_PREFIX: '{}longhaul' })).toThrow(/QUEUE_PREFIX: on a Redis Cluster/);
    expect(() => loadEnv({ ...SIMULATOR, REDIS_CLUSTER: 'true', REDIS_URL: 'redis://10.0.0.1:6379/2' })).toThrow(/REDIS_URL: a Redis Cluster has only database 0/);
    expect(() => loadEnv({ ...SIMULATOR, REDIS_CLUSTER: 'true', REDIS_CLUSTER_NODES: '10.0.0.2' })).toThrow(/REDIS_CLUSTER_NODES: entry 1 is not host:port/);
    expect(() => loadEnv({ ...SIMULATOR, REDIS_CLUSTER_NODES: '10.0.0.2:6379' })).toThrow(/REDIS_CLUSTER_NODES: names nodes of a Redis Cluster: set REDIS_CLUSTER=true too/);
  });

  test('the entrypoint exits 1 with that one line on stderr, no stack trace', () => {
    const run = spawnSync(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', ENTRY], {
      env: { PATH: process.env.PATH, ...SIMULATOR, DATABASE_URL: 'not a url' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('invalid worker configuration: DATABASE_URL: invalid URL\n');
  });
});
