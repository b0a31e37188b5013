#!/usr/bin/env node
// `npm start`: the whole system on localhost — simulator (unless a provider is configured), API
// and worker — with embedded defaults, then the URLs and a working API key.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ROOT, appendEnvFile, ensureDatabase, ensurePostgres, ensureRedis, gitIgnoredDir, installDependencies, log, readEnvFile, run } from './lib/setup.mjs';

const env = { ...process.env };
env.DATABASE_URL ??= 'postgres://postgres@127.0.0.1:5432/longhaul';
env.REDIS_URL ??= 'redis://127.0.0.1:6379';
const useSimulator = !env.OPENAI_BASE_URL && !env.OPENAI_API_KEY;
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

const children = [];
function launch(name, entry, extraEnv = {}) {
  // Own process group: a Ctrl-C reaches the children once, through shutdown() below.
  const child = spawn(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', entry], { cwd: ROOT, env: { ...env, ...extraEnv }, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  child.on('exit', (code, signal) => {
    log(`${name} exited (${signal ?? code})`);
    if (!shuttingDown) shutdown(1);
  });
  children.push(child);
}

let shuttingDown = false;
function shutdown(code = 0) {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  const timer = setTimeout(() => process.exit(code), 15_000);
  Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null))).then(() => {
    clearTimeout(timer);
    process.exit(code);
  });
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));

const apiUrl = `http://${env.HOST ?? '127.0.0.1'}:${env.PORT ?? '3000'}`;
if (useSimulator) {
  launch('sim', 'apps/sim/src/index.ts', { SIM_PORT: simPort, SIM_WEBHOOK_URLS: `${apiUrl}/webhooks/openai`, SIM_WEBHOOK_SECRET: env.OPENAI_WEBHOOK_SECRET });
}
launch('api', 'apps/api/src/index.ts');
launch('worker', 'apps/worker/src/index.ts', { LONGHAUL_MIGRATE_ON_START: 'false' });

setTimeout(() => {
  process.stderr.write(`
  Longhaul is running
    API        ${apiUrl}            (POST /v1/jobs, GET /v1/jobs/{id})
    Provider   ${env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1'}${useSimulator ? '   (simulator)' : ''}
    Webhooks   ${apiUrl}/webhooks/openai   (${env.OPENAI_WEBHOOK_SECRET ? 'verifying' : 'off: set OPENAI_WEBHOOK_SECRET'}; completion mode ${env.COMPLETION_MODE ?? 'hybrid'})
    API key    ${env.LONGHAUL_BOOTSTRAP_API_KEY}
    Admin      ${apiUrl}/admin/queues/ and ${apiUrl}/admin/jobs${env.ADMIN_TOKEN ? `   (log in with ADMIN_TOKEN ${env.ADMIN_TOKEN})` : ''}
    Metrics    ${apiUrl}/metrics (API), http://${env.METRICS_HOST ?? '127.0.0.1'}:${env.METRICS_PORT ?? '9464'}/metrics (worker); /healthz, /readyz on both

  Try:
    curl -s -X POST ${apiUrl}/v1/jobs -H "Authorization: Bearer ${env.LONGHAUL_BOOTSTRAP_API_KEY}" \\
      -H "Idempotency-Key: k1" -H 'content-type: application/json' \\
      -d '{"model":"o3","input":"Write a long novel about otters in space.","reasoning":{"effort":"high"},"metadata":{"sim_duration_ms":"3000"}}'

`);
}, 2500).unref();
