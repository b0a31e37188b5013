/**
 * `npm start` as a user runs it, stopped every way a user, a supervisor or a crash stops it. Each
 * case starts the whole system (simulator, API, worker under scripts/start.mjs) on its own ports,
 * database and Redis prefix, runs a job to completion over HTTP, stops it, and then checks what a
 * user would: every process of the tree is gone (read from /proc before the stop) and every port
 * can be listened on again.
 */
import { spawn, execFileSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@longhaul/db/testing';
import { createSimServer, type ListeningSim } from '@longhaul/sim';
import { ROOT, readTail } from '../chaos/processes.ts';
import { freePort } from '../chaos/servers.ts';
import { testDatabaseBaseUrl, testRedisUrl } from './env.ts';
import { deletePrefix } from './harness.ts';

const APPS = ['sim', 'api', 'worker'] as const;
type App = (typeof APPS)[number];

interface Tree {
  root: ChildProcess;
  /** The processes under `root`, root included, as /proc showed them once the system was up. */
  pids: number[];
  app(name: App): number;
  launcher: number;
}

interface System {
  env: Record<string, string>;
  ports: number[];
  apiUrl: string;
  apiKey: string;
  logFile: string;
}

let database: TestDatabase;
let dir: string;
const started: number[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase(testDatabaseBaseUrl());
  dir = mkdtempSync(path.join(tmpdir(), 'longhaul-lifecycle-'));
});

afterEach(() => {
  // A failed case must not leave its processes behind for the next one.
  for (const pid of started.splice(0)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
});

afterAll(async () => {
  const redis = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  for (const prefix of prefixes) await deletePrefix(redis, prefix);
  redis.disconnect();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

// ---- processes, from /proc -------------------------------------------------------------------

function procStat(pid: number): { ppid: number; state: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return null;
  }
}

/** Running, or stopped; a zombie has exited (whoever its parent is may just not have reaped it yet). */
function isAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat.state !== 'Z' && stat.state !== 'X';
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = procStat(pid);
    if (!stat || !isAlive(pid)) continue;
    children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      walk(child);
    }
  };
  walk(root);
  return out;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, detail: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(check()).catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${detail()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- the system --------------------------------------------------------------------------------

async function system(overrides: Record<string, string> = {}): Promise<System> {
  const [port, simPort, metricsPort, apiMetricsPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const apiKey = `lh_sk_${randomBytes(16).toString('hex')}`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    DATABASE_URL: database.url,
    REDIS_URL: testRedisUrl(),
    QUEUE_PREFIX: `lh_lifecycle_${randomBytes(4).toString('hex')}`,
    PORT: String(port),
    SIM_PORT: String(simPort),
    METRICS_PORT: String(metricsPort),
    API_METRICS_PORT: String(apiMetricsPort),
    LONGHAUL_SKIP_INSTALL: '1',
    LONGHAUL_BOOTSTRAP_API_KEY: apiKey,
    ADMIN_TOKEN: `lh_admin_${randomBytes(16).toString('hex')}`,
    POLL_INITIAL_MS: '100',
    POLL_MAX_MS: '500',
    SHUTDOWN_TIMEOUT_MS: '10000',
    ...overrides,
  };
  prefixes.push(env.QUEUE_PREFIX!);
  return { env, ports: [port, simPort, metricsPort, apiMetricsPort], apiUrl: `http://127.0.0.1:${port}`, apiKey, logFile: path.join(dir, `${env.QUEUE_PREFIX}.log`) };
}

interface StartOptions {
  /** Where the processes' stdout goes: the case's log file (default), a pipe, or a file descriptor. */
  stdout?: 'log' | 'pipe' | number;
  /** start.mjs runs the simulator (default); false when OPENAI_BASE_URL points elsewhere. */
  withSim?: boolean;
  /** In a process group of its own, as in a terminal where Ctrl-C signals the whole group. */
  group?: boolean;
}

/** Start `command` (npm start or start.mjs) and wait until every app answers; snapshot its tree. */
async function start(sys: System, command: string[], { stdout = 'log', withSim = true, group = false }: StartOptions = {}): Promise<Tree> {
  const log = openSync(sys.logFile, 'a');
  const stdio: StdioOptions = ['ignore', stdout === 'log' ? log : stdout, log];
  const root: ChildProcess = spawn(command[0]!, command.slice(1), { cwd: ROOT, env: sys.env, stdio, detached: group });
  closeSync(log);
  started.push(root.pid!);
  const tail = () => readTail(sys.logFile, 3000);
  const [apiPort, simPort, metricsPort] = sys.ports;
  const up = async (url: string) => (await fetch(url)).ok;
  const gone = () => root.exitCode !== null || root.signalCode !== null;
  const ready = async () =>
    (await up(`http://127.0.0.1:${apiPort}/readyz`)) && (await up(`http://127.0.0.1:${metricsPort}/readyz`)) && (!withSim || (await up(`http://127.0.0.1:${simPort}/health`)));
  await waitFor('the system to answer', async () => gone() || (await ready()), 45_000, tail);
  if (gone()) throw new Error(`${command.join(' ')} exited while starting:\n${tail()}`);
  const pids = [root.pid!, ...descendants(root.pid!)];
  started.push(...pids);
  const find = (needle: string) => {
    const pid = pids.find((p) => cmdline(p).includes(needle));
    if (!pid) throw new Error(`no process running ${needle} under ${root.pid}: ${pids.map((p) => `${p} ${cmdline(p)}`).join('; ')}`);
    return pid;
  };
  const apps = new Map((withSim ? APPS : APPS.filter((a) => a !== 'sim')).map((app) => [app, find(`apps/${app}/src/index.ts`)]));
  return {
    root,
    pids,
    launcher: find('scripts/start.mjs'),
    app: (name) => {
      const pid = apps.get(name);
      if (!pid) throw new Error(`no ${name} in this tree`);
      return pid;
    },
  };
}

async function api(sys: System, method: string, route: string, body?: unknown): Promise<any> {
  const res = await fetch(sys.apiUrl + route, {
    method,
    headers: { authorization: `Bearer ${sys.apiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

function submit(sys: System, durationMs: number): Promise<{ id: string }> {
  return api(sys, 'POST', '/v1/jobs', { model: 'o3', input: 'A short story about otters.', metadata: { sim_duration_ms: String(durationMs) } });
}

function waitForStatus(sys: System, id: string, statuses: string[]): Promise<any> {
  return waitFor(
    `job ${id} to be ${statuses.join(' or ')}`,
    async () => {
      const job = await api(sys, 'GET', `/v1/jobs/${id}`);
      return statuses.includes(job.status) ? job : undefined;
    },
    30_000,
  );
}

async function runJob(sys: System): Promise<void> {
  const job = await submit(sys, 200);
  expect((await waitForStatus(sys, job.id, ['completed', 'failed', 'cancelled', 'expired'])).status).toBe('completed');
}

/** Every process of the tree exits (within `timeoutMs`) and every port is free again. */
async function expectAllGone(sys: System, tree: Tree, timeoutMs = 30_000): Promise<void> {
  const describeAlive = () =>
    tree.pids
      .filter(isAlive)
      .map((p) => `${p} ${cmdline(p)}`)
      .join('\n');
  await waitFor(
    'every process of the tree to exit',
    () => tree.pids.every((p) => !isAlive(p)),
    timeoutMs,
    () => `still running:\n${describeAlive()}\nlog:\n${readTail(sys.logFile, 3000)}`,
  );
  for (const port of sys.ports) expect(await portFree(port), `port ${port} is free`).toBe(true);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

const START = [process.execPath, 'scripts/start.mjs'];

// ---- the cases -----------------------------------------------------------------------------------

describe.sequential('npm start stops cleanly', () => {
  it('SIGTERM to the npm process stops every process, and npm exits after them', { timeout: 90_000 }, async () => {
    const sys = await system();
    const tree = await start(sys, ['npm', 'start']);
    expect(tree.launcher).not.toBe(tree.root.pid);
    await runJob(sys);

    tree.root.kill('SIGTERM');
    expect(await exited(tree.root)).toEqual({ code: 0, signal: null });
    // npm waits for start.mjs, which waits for every app.
    for (const app of APPS) expect(isAlive(tree.app(app)), `${app} has exited when npm exits`).toBe(false);
    await expectAllGone(sys, tree);
  });

  it('Ctrl-C in a terminal (SIGINT to the whole foreground group, npm relays it too) stops gracefully', { timeout: 60_000 }, async () => {
    const sys = await system();
    const tree = await start(sys, ['npm', 'start'], { group: true });
    await runJob(sys);

    // start.mjs gets SIGINT twice, from the "terminal" and from npm: still one graceful stop, so
    // every app exits 0 and so do start.mjs and npm (a forced stop would exit 1).
    process.kill(-tree.root.pid!, 'SIGINT');
    expect(await exited(tree.root)).toEqual({ code: 0, signal: null });
    await expectAllGone(sys, tree);
  });

  it('SIGINT to start.mjs hands back an in-flight job, which completes after a restart', { timeout: 90_000 }, async () => {
    // A provider outside the tree, as OpenAI is: its responses outlive our processes.
    const provider: ListeningSim = await createSimServer({ time_scale: 1 }).listen(0);
    try {
      const sys = await system({ OPENAI_BASE_URL: `${provider.url}/v1`, OPENAI_API_KEY: 'sk-test', COMPLETION_MODE: 'poll' });
      const tree = await start(sys, START, { withSim: false });
      await runJob(sys);
      const job = await submit(sys, 6_000);
      await waitForStatus(sys, job.id, ['in_progress']);

      tree.root.kill('SIGINT');
      expect(await exited(tree.root)).toEqual({ code: 0, signal: null });
      await expectAllGone(sys, tree);

      const again = await start(sys, START, { withSim: false });
      expect((await waitForStatus(sys, job.id, ['completed', 'failed', 'cancelled', 'expired'])).status).toBe('completed');
      again.root.kill('SIGTERM');
      await expectAllGone(sys, again);
    } finally {
      await provider.close();
    }
  });

  it('SIGTERM to one app stops the others and start.mjs', { timeout: 60_000 }, async () => {
    const sys = await system();
    const tree = await start(sys, START);
    await runJob(sys);

    process.kill(tree.app('api'), 'SIGTERM');
    expect((await exited(tree.root)).code).toBe(1);
    await expectAllGone(sys, tree);
  });

  it('SIGKILL to start.mjs: its children notice and stop within seconds', { timeout: 60_000 }, async () => {
    const sys = await system();
    const tree = await start(sys, START);
    await runJob(sys);

    tree.root.kill('SIGKILL');
    await expectAllGone(sys, tree, 10_000);
  });

  it('an app whose stdout was closed still works and exits on SIGTERM', { timeout: 60_000 }, async () => {
    const sys = await system();
    const tree = await start(sys, START, { stdout: 'pipe' });
    tree.root.stdout!.destroy();
    await runJob(sys);

    tree.root.kill('SIGTERM');
    // 0: every app exited by itself, none had to be killed by start.mjs.
    expect(await exited(tree.root)).toEqual({ code: 0, signal: null });
    await expectAllGone(sys, tree);
  });

  it('an app whose stdout is a full pipe that nobody reads still works and exits on SIGTERM', { timeout: 60_000 }, async () => {
    // A FIFO filled to the brim before anyone starts: every write to it would block, or fail with
    // EAGAIN, forever. The test holds the reading end and never reads.
    const fifo = path.join(dir, 'full.fifo');
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    try {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      for (;;) {
        try {
          writeSync(reader, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
          throw err;
        }
      }
      const sys = await system({ LOG_LEVEL: 'debug' });
      const tree = await start(sys, START, { stdout: writer });
      await runJob(sys);

      tree.root.kill('SIGTERM');
      expect(await exited(tree.root)).toEqual({ code: 0, signal: null });
      await expectAllGone(sys, tree);
    } finally {
      closeSync(writer);
      closeSync(reader);
    }
  });
});
