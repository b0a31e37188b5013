import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { loadEnv } from '../src/env.ts';

const ENTRY = fileURLToPath(new URL('../src/index.ts', import.meta.url));

describe('loadEnv', () => {
  test('defaults', () => {
    const env = loadEnv({});
    expect(env).toMatchObject({ port: 3100, host: '127.0.0.1' });
    expect(Object.values(env.options).every((value) => value === undefined)).toBe(true);
  });

  test('parses faults, lists and booleans', () => {
    const env = loadEnv({
      SIM_PORT: '0',
      SIM_TIME_SCALE: '0.01',
      SIM_RATE_LIMIT_RATE: '0.25',
      SIM_FAULT_ENDPOINTS: 'create, cancel',
      SIM_WEBHOOK_URLS: 'http://127.0.0.1:4000/a,http://127.0.0.1:4000/b',
      SIM_WEBHOOK_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      SIM_WEBHOOK_REORDER: 'true',
      SIM_STREAM_RESUME_WINDOW_MS: '60000',
      SIM_STREAM_CUT_RATE: '0.1',
      SIM_STREAM_CUT_AFTER_EVENTS: '12',
    });
    expect(env.port).toBe(0);
    expect(env.options).toMatchObject({
      time_scale: 0.01,
      rate_limit_rate: 0.25,
      fault_endpoints: ['create', 'cancel'],
      webhook_urls: ['http://127.0.0.1:4000/a', 'http://127.0.0.1:4000/b'],
      webhook_reorder: true,
      stream_resume_window_ms: 60_000,
      stream_cut_rate: 0.1,
      stream_cut_after_events: 12,
    });
  });

  test('file limits and the spec path', () => {
    const env = loadEnv({ SIM_MAX_FILE_BYTES: '1000', SIM_FILES_MAX_TOTAL_BYTES: '5000', SIM_SPEC_PATH: '/specs/openai.json' });
    expect(env.options).toMatchObject({ max_file_bytes: 1000, files_max_total_bytes: 5000 });
    expect(env.specPath).toBe('/specs/openai.json');
    expect(loadEnv({ SIM_SPEC_PATH: 'off' }).specPath).toBeNull();
    expect(loadEnv({}).specPath).toBeUndefined();
  });

  test('an empty value counts as unset: the default applies', () => {
    const env = loadEnv({ SIM_PORT: '', SIM_HOST: '', SIM_SPEC_PATH: '', SIM_WEBHOOK_URLS: '', SIM_WEBHOOK_REORDER: '', SIM_ERROR_RATE: ' ' });
    expect(env).toMatchObject({ port: 3100, host: '127.0.0.1', specPath: undefined });
    expect(Object.values(env.options).every((value) => value === undefined)).toBe(true);
  });

  test('the entrypoint exits 1 with one line naming the variable on stderr, no stack trace', () => {
    const run = spawnSync(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', ENTRY], {
      env: { PATH: process.env.PATH, SIM_PORT: 'port' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^invalid simulator configuration: SIM_PORT: [^\n]+\n$/);
  });

  test('fails fast naming the variable', () => {
    expect(() => loadEnv({ SIM_ERROR_RATE: '3' })).toThrow(/SIM_ERROR_RATE/);
    expect(() => loadEnv({ SIM_WEBHOOK_URLS: 'not a url' })).toThrow(/SIM_WEBHOOK_URLS/);
    expect(() => loadEnv({ SIM_WEBHOOK_SECRET: 'secret' })).toThrow(/SIM_WEBHOOK_SECRET/);
    expect(() => loadEnv({ SIM_WEBHOOK_REORDER: 'maybe' })).toThrow(/SIM_WEBHOOK_REORDER/);
    expect(() => loadEnv({ SIM_STREAM_CUT_AFTER_EVENTS: '0' })).toThrow(/SIM_STREAM_CUT_AFTER_EVENTS/);
  });
});
