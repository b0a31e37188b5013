/**
 * The `longhaul` CLI against a real stack: live progress under a real pseudo-terminal (tmux, a
 * fixed 110×30 window, its screen captured as the job runs), JSON lines without a terminal, the
 * exit codes, the usage table, the operator commands delegated to @longhaul/cli, and the compiled
 * dist/cli.js running under plain node.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './harness.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENT = path.join(ROOT, 'packages/client');
// tsx by its URL: the CLI runs in a scratch directory, where a bare `tsx` would not resolve.
const TSX = pathToFileURL(createRequire(path.join(ROOT, 'package.json')).resolve('tsx')).href;
const FROM_SOURCE = ['--conditions=@longhaul/source', '--import', TSX, path.join(CLIENT, 'src/cli.ts')];

let stack: Stack;
let work: string;
beforeAll(async () => {
  stack = await startStack();
  work = mkdtempSync(path.join(tmpdir(), 'longhaul-cli-'));
  writeFileSync(path.join(work, 'question.txt'), 'Write a long novel about otters in space.');
});
afterAll(async () => {
  await stack?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const env = (extra: Record<string, string> = {}) => ({ ...process.env, LONGHAUL_URL: stack.apiUrl, LONGHAUL_API_KEY: stack.apiKey, FORCE_COLOR: '0', ...extra });

/** The CLI from source, without a terminal (stdout a pipe). */
function longhaul(args: string[], options: { env?: Record<string, string>; nodeArgs?: string[] } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...(options.nodeArgs ?? FROM_SOURCE), ...args], { cwd: work, env: env(options.env), timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

describe('longhaul jobs submit --wait on a terminal', () => {
  it('redraws one status line (status, elapsed, tokens), then the cost and the output', async () => {
    const socket = `lh-${randomBytes(4).toString('hex')}`;
    const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    const command = [
      'env',
      `LONGHAUL_URL=${stack.apiUrl}`,
      `LONGHAUL_API_KEY=${stack.apiKey}`,
      process.execPath,
      ...FROM_SOURCE,
      'jobs',
      'submit',
      '--model',
      'o3',
      '--input',
      '@question.txt',
      '--effort',
      'high',
      '--metadata',
      'sim_duration_ms=300000',
      '--wait',
    ]
      .map(shellQuote)
      .join(' ');
    const started = tmux('new-session', '-d', '-s', 'cli', '-x', '110', '-y', '30', '-c', work, `${command}; echo "EXIT=$?"; sleep 60`);
    expect(started.status, started.stderr).toBe(0);
    try {
      const screens: string[] = [];
      const deadline = Date.now() + 45_000;
      while (Date.now() < deadline) {
        const screen = tmux('capture-pane', '-p', '-t', 'cli').stdout;
        screens.push(screen);
        if (/EXIT=\d+/.test(screen)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const final = screens.at(-1)!;
      expect(final).toMatch(/EXIT=0/);
      // While it ran: one line with the job, its status, the time so far and the tokens streamed so far.
      const live = screens.map((s) => s.split('\n').find((l) => /^job_\S+ {2}in_progress {2}\d+\.\ds {2}\d+ tokens/.test(l))).filter(Boolean) as string[];
      expect(live.length).toBeGreaterThan(1);
      const tokens = live.map((l) => Number(/(\d+) tokens/.exec(l)![1]));
      expect(Math.max(...tokens)).toBeGreaterThan(0);
      expect(tokens).toEqual([...tokens].sort((a, b) => a - b)); // the count only grows
      // Redrawn in place: never two status lines on one screen.
      for (const screen of screens) expect(screen.split('\n').filter((l) => /^job_\S+ {2}[a-z_]+ {2}\d/.test(l)).length).toBeLessThanOrEqual(1);
      // Then the last state with the cost, and the output text below it.
      const lines = final.split('\n');
      const doneAt = lines.findIndex((l) => /^job_\S+ {2}completed {2}\d+\.\ds {2}\d+ tokens( \(\d+ reasoning\))? {2}\$\d+\.\d+/.test(l));
      expect(doneAt, final).toBeGreaterThanOrEqual(0);
      const jobId = lines[doneAt]!.split(' ')[0]!;
      const { body: job } = await stack.api('GET', `/v1/jobs/${jobId}`);
      expect(job.status).toBe('completed');
      expect(lines[doneAt]).toContain(`${job.usage.output_tokens} tokens`);
      expect(lines[doneAt]).toContain(`(${job.reasoning_tokens} reasoning)`);
      expect(
        lines
          .slice(doneAt + 1)
          .join(' ')
          .replace(/\s+/g, ' '),
      ).toContain(job.output_text.slice(0, 60).replace(/\s+/g, ' '));
    } finally {
      tmux('kill-server');
    }
  });
});

describe('longhaul without a terminal', () => {
  it('prints one JSON event per line and exits 0 when the job completes', async () => {
    const { code, stdout } = await longhaul(['jobs', 'submit', '--model', 'o3', '--input', '@question.txt', '--metadata', 'sim_duration_ms=20000', '--wait']);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n');
    const parsed = lines.map((l) => JSON.parse(l));
    const types = parsed.map((p) => p.type);
    expect(types).toContain('response.output_text.delta');
    expect(types).toContain('job.completed');
    expect(parsed.at(-1)).toMatchObject({ type: 'result', data: { status: 'completed', output_text: expect.any(String) } });
    expect(parsed.slice(0, -1).every((p) => typeof p.id === 'string')).toBe(true);
  });

  it('exits 1 for a job that failed, 2 for a usage error, 3 for an API error with its code', async () => {
    const failed = await longhaul(['jobs', 'submit', '--model', 'o3', '--input', 'x', '--metadata', 'sim_outcome=failed', '--metadata', 'sim_duration_ms=0', '--wait']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.stdout.trim().split('\n').at(-1)!).data.status).toBe('failed');

    const usage = await longhaul(['jobs', 'submit', '--input', 'x']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--model');
    expect((await longhaul(['jobs', 'frobnicate'])).code).toBe(2);
    expect((await longhaul(['jobs', 'list'], { env: { LONGHAUL_API_KEY: '' } })).code).toBe(2);

    const unauthorized = await longhaul(['jobs', 'list'], { env: { LONGHAUL_API_KEY: 'lh_sk_wrong' } });
    expect(unauthorized.code).toBe(3);
    expect(unauthorized.stderr).toMatch(/error invalid_api_key: .*HTTP 401/);
    const missing = await longhaul(['jobs', 'get', 'job_doesnotexist1234', '--url', stack.apiUrl, '--api-key', stack.apiKey], { env: { LONGHAUL_URL: 'http://127.0.0.1:9' } });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('error not_found');
  });

  it('gets, lists, cancels, shows events and watches jobs', async () => {
    const submitted = await longhaul(['jobs', 'submit', '--model', 'o3', '--input', 'hello', '--metadata', 'sim_duration_ms=1000000']);
    expect(submitted.code).toBe(0);
    const job = JSON.parse(submitted.stdout);
    expect(job).toMatchObject({ object: 'job', status: 'pending' });
    expect(JSON.parse((await longhaul(['jobs', 'get', job.id])).stdout).id).toBe(job.id);
    expect(JSON.parse((await longhaul(['jobs', 'list', '--limit', '5'])).stdout).data.map((j: { id: string }) => j.id)).toContain(job.id);
    expect(['cancelling', 'cancelled']).toContain(JSON.parse((await longhaul(['jobs', 'cancel', job.id])).stdout).status);
    const watched = await longhaul(['jobs', 'watch', job.id]);
    expect(watched.code).toBe(1); // cancelled, not completed
    expect(JSON.parse(watched.stdout.trim().split('\n').at(-1)!).data.status).toBe('cancelled');
    const slow = JSON.parse((await longhaul(['jobs', 'submit', '--model', 'o3', '--input', 'slow', '--metadata', 'sim_duration_ms=10000000'])).stdout);
    const timedOut = await longhaul(['jobs', 'watch', slow.id, '--timeout', '1']);
    expect(timedOut.code).toBe(1);
    expect(timedOut.stderr).toContain('did not finish within 1000 ms');
    await longhaul(['jobs', 'cancel', slow.id]);
    const events = JSON.parse((await longhaul(['jobs', 'events', job.id])).stdout);
    expect(events.data.map((e: { to: string }) => e.to)).toContain('cancelled');
  });

  it('prints usage as a table by model', async () => {
    const { code, stdout } = await longhaul(['usage']);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^model +jobs +input +cached +output +reasoning +cost$/);
    expect(lines[1]).toMatch(/^-+( +-+){6}$/);
    expect(lines.find((l) => l.startsWith('o3 '))).toMatch(/^o3 +\d+ +\d+ +\d+ +\d+ +\d+ +\$\d+\.\d+$/);
    expect(lines.at(-1)).toMatch(/^total +\d+/);
    const json = JSON.parse((await longhaul(['usage', '--json', '--group-by', 'day'])).stdout);
    expect(json).toMatchObject({ object: 'usage', group_by: 'day' });
  });

  it('runs the operator commands through @longhaul/cli (DATABASE_URL)', async () => {
    const created = await longhaul(['tenant', 'create', 'cli-made'], { env: { DATABASE_URL: stack.database.url } });
    expect(created.code, created.stderr).toBe(0);
    const tenant = JSON.parse(created.stdout);
    expect(tenant).toMatchObject({ tenant_id: expect.any(String), api_key: expect.stringMatching(/^lh_sk_/) });
    const limits = await longhaul(['tenant', 'limits', tenant.tenant_id, '--rpm', '600'], { env: { DATABASE_URL: stack.database.url } });
    expect(JSON.parse(limits.stdout)).toMatchObject({ tenant_id: tenant.tenant_id, rpm_limit: 600 });
    // The new tenant's key works through the API commands.
    const listed = await longhaul(['jobs', 'list'], { env: { LONGHAUL_API_KEY: tenant.api_key } });
    expect(JSON.parse(listed.stdout).data).toEqual([]);
    expect((await longhaul(['migrate'], { env: { DATABASE_URL: stack.database.url } })).code).toBe(0);
  });
});

describe('the compiled CLI', () => {
  it('builds with tsc and runs under plain node (dist/cli.js)', async () => {
    // Built beside the package (so its dependencies resolve), in a directory git ignores.
    const out = mkdtempSync(path.join(CLIENT, 'node_modules', '.build-'));
    try {
      const tsc = spawnSync(path.join(ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(CLIENT, 'tsconfig.build.json'), '--outDir', out], { encoding: 'utf8' });
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
      expect(existsSync(path.join(out, 'index.d.ts'))).toBe(true);
      expect(existsSync(path.join(out, 'schema.d.ts'))).toBe(true);
      const { body: job } = await stack.api('POST', '/v1/jobs', { model: 'o3', input: 'hi', metadata: { sim_duration_ms: '0' } });
      const run = await longhaul(['jobs', 'watch', job.id], { nodeArgs: [path.join(out, 'cli.js')] });
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout.trim().split('\n').at(-1)!).data).toMatchObject({ id: job.id, status: 'completed' });
      const help = await longhaul(['--help'], { nodeArgs: [path.join(out, 'cli.js')] });
      expect(help.stdout).toContain('jobs submit');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
