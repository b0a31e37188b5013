#!/usr/bin/env node
// `npm run start:api|start:worker|start:sim` and the operator CLI (`npm run migrate`,
// `tenant:create`, `tenant:limits`): one entrypoint run as in production, its compiled JavaScript
// under plain `node`, configured from the environment only (no services are started for you).
// It is built first: `turbo run build` for that app and the packages it depends on, a replay
// from turbo's cache when nothing changed, so a fresh clone works and a stale dist/ is rebuilt.
// LONGHAUL_SKIP_BUILD=1 runs whatever dist/ holds. `bench` and `chaos` run their TypeScript
// sources with tsx (they start the apps from source themselves).
//
// This process stays in between: SIGINT and SIGTERM are passed on to the app, whose exit code
// (1 if a signal killed it) becomes ours; a compiled app is given our pid (LONGHAUL_PARENT_PID) so
// that it shuts down by itself if we are killed without being able to pass anything on.
import { spawn, spawnSync } from 'node:child_process';
import { ROOT, installDependencies, log, pnpmCommand, watchParent } from './lib/setup.mjs';

const COMPILED = {
  api: { pkg: '@longhaul/api', entry: 'apps/api/dist/index.js' },
  worker: { pkg: '@longhaul/worker', entry: 'apps/worker/dist/index.js' },
  sim: { pkg: '@longhaul/sim', entry: 'apps/sim/dist/index.js' },
  cli: { pkg: '@longhaul/cli', entry: 'apps/cli/dist/index.js' },
};
const SOURCE = {
  bench: 'bench/index.ts',
  chaos: 'chaos/index.ts',
};

const [name, ...args] = process.argv.slice(2);
if (!COMPILED[name] && !SOURCE[name]) {
  console.error(`usage: run-app.mjs ${[...Object.keys(COMPILED), ...Object.keys(SOURCE)].join('|')} [args]`);
  process.exit(2);
}
if (process.env.LONGHAUL_SKIP_INSTALL !== '1') installDependencies();

let nodeArgs;
const env = { ...process.env };
if (COMPILED[name]) {
  const { pkg, entry } = COMPILED[name];
  if (process.env.LONGHAUL_SKIP_BUILD !== '1') build(pkg);
  nodeArgs = [entry];
  env.LONGHAUL_PARENT_PID = String(process.pid);
} else {
  // Not for bench and chaos: the apps they start inherit their environment and have another parent.
  nodeArgs = ['--conditions=@longhaul/source', '--import', 'tsx', SOURCE[name]];
}

const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: ROOT, stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
// npm's `sh -c` dies of a SIGTERM sent to npm without passing it on: our parent going away is one.
watchParent(() => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

/** `turbo run build` for `pkg` and its workspace dependencies; its report goes to stderr (stdout is the app's). */
function build(pkg) {
  const [cmd, ...pre] = pnpmCommand();
  log(`building ${pkg} (turbo run build)`);
  const r = spawnSync(cmd, [...pre, 'exec', 'turbo', 'run', 'build', `--filter=${pkg}`, '--output-logs=errors-only', '--log-prefix=none'], {
    cwd: ROOT,
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  if (r.status !== 0) {
    log(`the build of ${pkg} failed (${r.status ?? r.signal}); see above`);
    process.exit(1);
  }
}
