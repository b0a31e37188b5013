// Set-up shared by `npm start` and `npm test`: dependencies and local services.
// Plain Node (no dependencies) so it runs before `pnpm install`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const PNPM_VERSION = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).packageManager.split('@')[1];

export function log(message) {
  process.stderr.write(`[longhaul] ${message}\n`);
}

function has(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** The pnpm command line: a global pnpm 10 if present, otherwise the pinned one through npx. */
export function pnpmCommand() {
  if (has('pnpm')) {
    const v = spawnSync('pnpm', ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
    if (v.startsWith(`${PNPM_VERSION.split('.')[0]}.`)) return ['pnpm'];
  }
  return ['npx', '--yes', `pnpm@${PNPM_VERSION}`];
}

export function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
}

/**
 * Install workspace dependencies (a no-op in ~1 s when they are up to date). LONGHAUL_SKIP_INSTALL=1
 * skips it (tests that start the whole system, a machine whose node_modules is managed elsewhere).
 */
export function installDependencies() {
  if (process.env.LONGHAUL_SKIP_INSTALL === '1') return;
  const [cmd, ...pre] = pnpmCommand();
  log('installing dependencies (pnpm install --frozen-lockfile)');
  run(cmd, [...pre, 'install', '--frozen-lockfile', '--prefer-offline', '--reporter=silent']);
}

function tcpReachable(host, port, timeoutMs = 1500) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

async function waitReachable(host, port, what, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await tcpReachable(host, port)) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${what} did not come up on ${host}:${port}`);
}

const isLocal = (host) => ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);

/**
 * The URL in setting `name`, or a one-line refusal naming it and exit 1: a launcher that cannot
 * read its settings has started nothing yet, and an ERR_INVALID_URL stack trace says less. The
 * value is not echoed (it may hold a password).
 */
function urlSetting(name, value) {
  try {
    return new URL(value);
  } catch {
    log(`${name}: invalid URL; unset it for the local default, or give e.g. ${name === 'REDIS_URL' ? 'redis://127.0.0.1:6379' : 'postgres://user:password@host:5432/longhaul'}`);
    process.exit(1);
  }
}

function aptInstall(pkgs) {
  if (!has('apt-get')) throw new Error(`${pkgs.join(', ')} not installed and apt-get is unavailable: install it or point the URL at a running server`);
  log(`installing ${pkgs.join(' ')} from Debian packages`);
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'update', '-qq'], { env });
  run(sudo[0] ?? 'apt-get', [...sudo.slice(1), ...(sudo.length ? ['apt-get'] : []), 'install', '-y', '-qq', ...pkgs], { env });
}

/** Make sure Postgres answers at `url`; start (or install) a local one when it does not. */
export async function ensurePostgres(url) {
  const u = urlSetting('DATABASE_URL', url);
  const host = u.hostname;
  const port = Number(u.port || 5432);
  if (await tcpReachable(host, port)) return;
  if (!isLocal(host)) throw new Error(`Postgres at ${host}:${port} is not reachable`);
  let installed = false;
  if (!existsSync('/etc/postgresql') && !has('pg_ctlcluster')) {
    aptInstall(['postgresql']);
    installed = true;
  }
  const versions = readdirSync('/etc/postgresql');
  const version = versions.sort().at(-1);
  if (installed) trustLocalConnections(version);
  log(`starting local Postgres ${version}`);
  run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'ignore' });
  await waitReachable(host, port, 'Postgres');
}

/** A Postgres we installed ourselves is for local development: let 127.0.0.1 in without a password. */
function trustLocalConnections(version) {
  const hba = `/etc/postgresql/${version}/main/pg_hba.conf`;
  const current = readFileSync(hba, 'utf8');
  if (!current.includes('# longhaul local development')) {
    writeFileSync(hba, `# longhaul local development\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n${current}`);
  }
}

/** Create the database named in `url` if it does not exist (needs the `pg` package installed). */
export async function ensureDatabase(url) {
  const { default: pg } = await import(path.join(ROOT, 'node_modules/pg/lib/index.js'));
  const target = urlSetting('DATABASE_URL', url);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(target);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (!exists.rowCount) {
      log(`creating database ${name}`);
      await client.query(`create database "${name.replaceAll('"', '""')}"`);
    }
  } finally {
    await client.end();
  }
}

/** Make sure Redis answers at `url`; start (or install) a local one when it does not. */
export async function ensureRedis(url) {
  const u = urlSetting('REDIS_URL', url);
  const host = u.hostname;
  const port = Number(u.port || 6379);
  if (await tcpReachable(host, port)) return;
  if (!isLocal(host)) throw new Error(`Redis at ${host}:${port} is not reachable`);
  if (!has('redis-server')) aptInstall(['redis-server']);
  log(`starting local Redis on port ${port}`);
  run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await waitReachable(host, port, 'Redis');
}

/** True in CI: `CI` set to anything but empty, `false` or `0` (what CI services set, and `is-ci` reads). */
function isCi(env = process.env) {
  return !['', 'false', '0'].includes(env.CI ?? '');
}

/**
 * Headless Chromium for the admin UI's browser test (playwright-core drives it; no browser is
 * downloaded). Installed from Debian packages when missing and we can; a no-op when present.
 *
 * In CI a browser that is still missing fails the run (throws): the browser test would otherwise
 * go unrun and nobody would see it. On a developer's machine that cannot install it (no apt-get,
 * or neither root nor sudo: macOS, a locked-down laptop) it is a warning and the browser test
 * skips itself, saying why, so the rest of the suite still runs. A failed install (apt-get
 * exiting non-zero, or a package that left no executable there) throws everywhere: that machine
 * could have the browser and something is wrong with it.
 */
export function ensureChromium(executable = '/usr/bin/chromium', env = process.env) {
  if (existsSync(executable)) return;
  if (!has('apt-get') || (process.getuid?.() !== 0 && !has('sudo'))) {
    const why = `${executable} is missing and cannot be installed here (needs apt-get, as root or with sudo)`;
    if (isCi(env)) throw new Error(`${why}: CI is set, so the admin UI browser test must run; install Chromium at ${executable}`);
    log(`WARNING: ${why}: the admin UI browser test will be skipped (in CI this fails the run)`);
    return;
  }
  aptInstall(['chromium']);
  if (!existsSync(executable)) throw new Error(`installed the chromium package but ${executable} is still missing: the admin UI browser test cannot run`);
}

/** Read KEY=VALUE lines (the local, git-ignored settings `npm start` generates once). */
export function readEnvFile(file) {
  if (!existsSync(file)) return {};
  const out = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2];
  }
  return out;
}

export function appendEnvFile(file, key, value) {
  appendFileSync(file, `${key}=${value}\n`, { mode: 0o600 });
}

/**
 * Call `onGone` once when this process's parent is gone: killed (even by SIGKILL) or crashed, the
 * kernel hands us to another parent, so `process.ppid` changes. Polled once a second on an unref'd
 * timer. A launcher uses it to stop what it started when nobody is left to stop it.
 */
export function watchParent(onGone, parentPid = process.ppid) {
  const timer = setInterval(() => {
    if (process.ppid === parentPid) return;
    clearInterval(timer);
    onGone();
  }, 1000);
  timer.unref();
}

/** A closed stdout or stderr (EPIPE, EIO) must not crash a launcher with an unhandled 'error'. */
export function ignoreStdioErrors() {
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
}

export function gitIgnoredDir() {
  return path.join(ROOT, '.longhaul');
}
