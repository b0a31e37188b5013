#!/usr/bin/env node
// `npm test`: install, run the checks (`npm run check`: Biome, madge, knip), make sure Postgres and Redis answer (start local ones otherwise) and that
// headless Chromium is there (the admin UI test), type-check every package, then run every test
// (unit, integration, end to end).
import { ensureChromium, ensurePostgres, ensureRedis, installDependencies, log, pnpmCommand, run } from './lib/setup.mjs';

// `||=`: set but empty (`DATABASE_URL=`) counts as unset, as it does for the apps.
process.env.DATABASE_URL ||= 'postgres://postgres@127.0.0.1:5432/postgres';
process.env.REDIS_URL ||= 'redis://127.0.0.1:6379';

installDependencies();
log('checking lint, format, import cycles and unused code (npm run check)');
run(process.execPath, ['scripts/check.mjs']);
await ensurePostgres(process.env.DATABASE_URL);
await ensureRedis(process.env.REDIS_URL);
ensureChromium();
const [cmd, ...pre] = pnpmCommand();
log('type-checking');
run(cmd, [...pre, 'exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only']);
run(cmd, [...pre, 'exec', 'tsc', '-p', 'tsconfig.json']); // tests, scripts, bench
log('running tests');
run(cmd, [...pre, 'exec', 'vitest', 'run', ...process.argv.slice(2)]);
