#!/usr/bin/env node
// `npm start`: the whole system on localhost — simulator (unless a provider is configured), API
// and worker — with embedded defaults, then the URLs and a working API key.
//
// Lifecycle. Each app runs in a session of its own (detached), so a terminal's Ctrl-C reaches it
// once, through shutdown() below. This process stops them all when
//   - it gets SIGINT or SIGTERM (package.json `exec`s it: npm relays a signal to its child only,
//     and a shell in between would die of it and leave us running);
//   - one of them exits (the rest follow: there is no half a system);
//   - its own parent is gone (npm killed by SIGKILL, a closed terminal): watchParent.
// Every app is told our pid (LONGHAUL_PARENT_PID) and shuts itself down if we die by SIGKILL. An
// app still running past its own deadline plus a margin is killed with its process group, so
// this process never exits leaving one behind.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import {
  ROOT,
  appendEnvFile,
  ensureDatabase,
  ensurePostgres,
  ensureRedis,
  gitIgnoredDir,
  ignoreStdioErrors,
  installDependencies,
  log,
  readEnvFile,
  run,
  watchParent,
} from './lib/setup.mjs';
import { COLOCATED_ENV } from './start-defaults.mjs';

/** A repeat of the first signal within this window is the same Ctrl-C (the terminal and npm both send it). */
const REPEAT_WINDOW_MS = 1_000;

const children = [];
const running = () => children.filter((c) => c.exitCode === null && c.signalCode === null);
let stopping = null;

/** Stop every app (SIGTERM: each drains within its deadline), then exit with `code` (1 if one did not stop cleanly). Idempotent. */
function shutdown(reason, code) {
  if (stopping) return;
  stopping = { at: Date.now(), code };
  log(`stopping (${reason})`);
  for (const c of running()) c.kill('SIGTERM');
  // The apps' own deadlines: SHUTDOWN_TIMEOUT_MS (API 10 s, worker 30 s by default) + 2 s, simulator 12 s.
  const configured = Number.parseInt(process.env.SHUTDOWN_TIMEOUT_MS ?? '', 10);
  const graceMs = Math.max(Number.isFinite(configured) ? configured : 30_000, 10_000) + 5_000;
  setTimeout(() => {
    for (const c of running()) {
      log(`${c.appName} still running ${graceMs} ms after SIGTERM: killing it`);
      killGroup(c, 'SIGKILL');
    }
  }, graceMs).unref();
  exitWhenStopped();
}

function exitWhenStopped() {
  if (stopping && running().length === 0) process.exit(stopping.code);
}

function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

function onSignal(signal) {
  if (!stopping) return shutdown(signal, 0);
  if (Date.now() - stopping.at < REPEAT_WINDOW_MS) return;
  // A second signal: each app exits at once on its second one.
  log(`second ${signal}: stopping now`);
  for (const c of running()) c.kill(signal);
}

ignoreStdioErrors();
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
watchParent(() => shutdown('the process that started it is gone', 1));

// A setting that is set but empty (`SIM_PORT=`) counts as unset, as it does for the apps.
const env = Object.fromEntries(Object.entries(process.env).filter(([, value]) => value !== ''));
env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/longhaul';
env.REDIS_URL ??= 'redis://127.0.0.1:6379';
const useSimulator = !env.OPENAI_BASE_URL && !env.OPENAI_API_KEY && !env.OPENAI_API_KEYS_FILE;
const simPort = env.SIM_PORT ?? '3100';
if (useSimulator) env.OPENAI_BASE_URL = `http://127.0.0.1:${simPort}/v1`;

// Secrets generated once and kept in .longhaul/local.env (git-ignored), so restarts keep the same key.
const stateDir = gitIgnoredDir();
mkdirSync(stateDir, { recursive: true });
const localEnvFile = path.join(stateDir, 'local.env');
const local = readEnvFile(localEnvFile);
if (!local.LONGHAUL_BOOTSTRAP_API_KEY) {
  local.LONGHAUL_BOOTSTRAP_API_KEY = `lh_sk_${randomBytes(24).toString('hex')}`;
  appendEnvFile(localEnvFile, 'LONGHAUL_BOOTSTRAP_API_KEY', local.LONGHAUL_BOOTSTRAP_API_KEY);
}
env.LONGHAUL_BOOTSTRAP_API_KEY ??= local.LONGHAUL_BOOTSTRAP_API_KEY;
if (!local.ADMIN_TOKEN) {
  local.ADMIN_TOKEN = `lh_admin_${randomBytes(24).toString('hex')}`;
  appendEnvFile(localEnvFile, 'ADMIN_TOKEN', local.ADMIN_TOKEN);
}
// The admin UI's credential, unless one is configured (or auth is disabled) explicitly.
if (!env.ADMIN_BASIC_AUTH && env.ADMIN_AUTH_DISABLED !== 'true') env.ADMIN_TOKEN ??= local.ADMIN_TOKEN;
if (!local.OPENAI_WEBHOOK_SECRET) {
  local.OPENAI_WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
  appendEnvFile(localEnvFile, 'OPENAI_WEBHOOK_SECRET', local.OPENAI_WEBHOOK_SECRET);
}
// With the simulator, its signed webhooks go to our receiver: hybrid detection out of the box.
if (useSimulator) env.OPENAI_WEBHOOK_SECRET ??= local.OPENAI_WEBHOOK_SECRET;

installDependencies();
await ensurePostgres(env.DATABASE_URL);
await ensureDatabase(env.DATABASE_URL);
await ensureRedis(env.REDIS_URL);
log('applying migrations');
run(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', 'apps/cli/src/index.ts', 'migrate'], { env });

function launch(name, entry, extraEnv = {}) {
  if (stopping) return;
  const child = spawn(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', entry], {
    cwd: ROOT,
    // The apps share this machine's cores: COLOCATED_ENV (e.g. the worker's CPU priority) unless set.
    env: { ...COLOCATED_ENV[name], ...env, ...extraEnv, LONGHAUL_PARENT_PID: String(process.pid) },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  child.appName = name;
  child.on('exit', (code, signal) => {
    log(`${name} exited (${signal ?? code})`);
    if (!stopping) shutdown(`${name} exited`, 1);
    // Our exit code says whether the stop was clean: every app exited 0 by itself.
    else if (code !== 0) stopping.code = 1;
    exitWhenStopped();
  });
  children.push(child);
}

const apiUrl = `http://${env.HOST ?? '127.0.0.1'}:${env.PORT ?? '3000'}`;
if (useSimulator) {
  launch('sim', 'apps/sim/src/index.ts', { SIM_PORT: simPort, SIM_WEBHOOK_URLS: `${apiUrl}/webhooks/openai`, SIM_WEBHOOK_SECRET: env.OPENAI_WEBHOOK_SECRET });
}
launch('api', 'apps/api/src/index.ts');
launch('worker', 'apps/worker/src/index.ts', { LONGHAUL_MIGRATE_ON_START: 'false' });

// Each app's metrics listener (loopback unless METRICS_HOST says otherwise); the API's own port serves no /metrics without METRICS_TOKEN.
const metricsUrl = (port) => `http://${env.METRICS_HOST ?? '127.0.0.1'}:${port}/metrics`;
setTimeout(() => {
  process.stderr.write(`
  Longhaul is running
    API        ${apiUrl}            (POST /v1/jobs, GET /v1/jobs/{id})
    Provider   ${env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1'}${useSimulator ? '   (simulator)' : ''}
    Webhooks   ${apiUrl}/webhooks/openai   (${env.OPENAI_WEBHOOK_SECRET ? 'verifying' : 'off: set OPENAI_WEBHOOK_SECRET'}; completion mode ${env.COMPLETION_MODE ?? 'hybrid'})
    API key    ${env.LONGHAUL_BOOTSTRAP_API_KEY}
    Admin      ${apiUrl}/admin/queues/ and ${apiUrl}/admin/jobs${env.ADMIN_TOKEN ? `   (log in with ADMIN_TOKEN ${env.ADMIN_TOKEN})` : ''}
    Metrics    ${metricsUrl(env.API_METRICS_PORT ?? '9465')} (API), ${metricsUrl(env.METRICS_PORT ?? '9464')} (worker)${env.METRICS_TOKEN ? ', with Authorization: Bearer $METRICS_TOKEN' : ''}; /healthz, /readyz there too

  Try:
    curl -s -X POST ${apiUrl}/v1/jobs -H "Authorization: Bearer ${env.LONGHAUL_BOOTSTRAP_API_KEY}" \\
      -H "Idempotency-Key: k1" -H 'content-type: application/json' \\
      -d '{"model":"o3","input":"Write a long novel about otters in space.","reasoning":{"effort":"high"},"metadata":{"sim_duration_ms":"3000"}}'

`);
}, 2500).unref();
