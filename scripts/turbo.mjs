#!/usr/bin/env node
// `npm run build` and `npm run typecheck`: `turbo run <task>` over the workspace. turbo needs to
// find pnpm, which a fresh machine only has through npx, so it runs under `pnpm exec` (the pinned
// pnpm, see pnpmCommand) after installing dependencies.
import { installDependencies, pnpmCommand, run } from './lib/setup.mjs';

installDependencies();
const [cmd, ...pre] = pnpmCommand();
run(cmd, [...pre, 'exec', 'turbo', 'run', ...process.argv.slice(2)]);
