import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { loadEnv } from '../src/env.ts';

const ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url));

describe('loadEnv', () => {
  test('an empty value counts as unset: the default applies', () => {
    const env = loadEnv({ DATABASE_URL: '', REDIS_URL: ' ', PORT: '', ADMIN_TOKEN: '', LONGHAUL_MIGRATE_ON_START: '' });
    expect(env.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/longhaul');
    expect(env.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(env.PORT).toBe(3000);
    expect(env.ADMIN_TOKEN).toBeUndefined();
    expect(env.LONGHAUL_MIGRATE_ON_START).toBe(true);
  });

  test('a bad value is refused in one line naming the variable, never echoing it', () => {
    expect(() => loadEnv({ DATABASE_URL: 'not a url' })).toThrow('invalid API configuration: DATABASE_URL: invalid URL');
    expect(() => loadEnv({ PORT: 'http' })).toThrow(/^invalid API configuration: PORT: /);
    let message = '';
    try {
      loadEnv({ DATABASE_URL: 'nope', ADMIN_TOKEN: 'short-secret', API_RPM_LIMIT: '-1' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).not.toContain('\n');
    expect(message).toMatch(/^invalid API configuration: [^;]+(; [^;]+){2}$/);
    expect(message).toContain('DATABASE_URL: invalid URL');
    expect(message).toContain('ADMIN_TOKEN: use at least 16 characters');
    expect(message).toContain('API_RPM_LIMIT: too small');
    expect(message).not.toContain('short-secret');
  });

  test('Redis Cluster: REDIS_URL seeds it, the prefix defaults to {longhaul} and must hold a hash tag', () => {
    expect(loadEnv({}).QUEUE_PREFIX).toBe('longhaul');
    const env = loadEnv({ REDIS_CLUSTER: 'true', REDIS_CLUSTER_NODES: '10.0.0.2:6379, [::1]:7000' });
    expect(env).toMatchObject({ REDIS_CLUSTER: true, REDIS_CLUSTER_NODES: ['10.0.0.2:6379', '[::1]:7000'], QUEUE_PREFIX: '{longhaul}' });
    expect(loadEnv({ REDIS_CLUSTER: 'true', QUEUE_PREFIX: 'acme{lh}' }).QUEUE_PREFIX).toBe('acme{lh}');
    expect(() => loadEnv({ REDIS_CLUSTER: 'true', QUEUE_PREFIX: 'longhaul' })).toThrow(
      /^invalid API configuration: QUEUE_PREFIX: on a Redis Cluster the prefix must contain a hash tag, e\.g\. \{longhaul\}/,
    );
    expect(() => loadEnv({ REDIS_CLUSTER: 'true', QUEUE_PREFIX: '{}longhaul' })).toThrow(/QUEUE_PREFIX: on a Redis Cluster/);
    expect(() => loadEnv({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://10.0.0.1:6379/2' })).toThrow(/REDIS_URL: a Redis Cluster has only database 0/);
    expect(() => loadEnv({ REDIS_CLUSTER: 'true', REDIS_CLUSTER_NODES: '10.0.0.2' })).toThrow(/REDIS_CLUSTER_NODES: entry 1 is not host:port/);
    expect(() => loadEnv({ REDIS_CLUSTER_NODES: '10.0.0.2:6379' })).toThrow(/REDIS_CLUSTER_NODES: names nodes of a Redis Cluster: set REDIS_CLUSTER=true too/);
  });

  test('the entrypoint exits 1 with that one line on stderr, no stack trace', () => {
    const run = spawnSync(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', ENTRY], {
      env: { PATH: process.env.PATH, DATABASE_URL: 'not a url' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('invalid API configuration: DATABASE_URL: invalid URL\n');
  });
});
