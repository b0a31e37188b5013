#!/usr/bin/env node
// `npm run start:api|start:worker|start:sim|bench|chaos|cli`: run one entrypoint as in production
// (configuration from the environment only; no services are started for you).
import { spawn } from 'node:child_process';
import { ROOT, installDependencies } from './lib/setup.mjs';

const ENTRIES = {
  api: 'apps/api/src/index.ts',
  worker: 'apps/worker/src/index.ts',
  sim: 'apps/sim/src/index.ts',
  bench: 'bench/index.ts',
  chaos: 'chaos/index.ts',
  cli: 'scripts/longhaul.ts',
};
const [name, ...args] = process.argv.slice(2);
if (!ENTRIES[name]) {
  console.error(`usage: run-app.mjs ${Object.keys(ENTRIES).join('|')} [args]`);
  process.exit(2);
}
if (process.env.LONGHAUL_SKIP_INSTALL !== '1') installDependencies();
const child = spawn(process.execPath, ['--conditions=@longhaul/source', '--import', 'tsx', ENTRIES[name], ...args], { cwd: ROOT, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
