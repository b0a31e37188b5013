#!/usr/bin/env node
// `npm run check`: the checks that keep the house tidy, each failing on any finding. `npm test` runs
// them first (so CI does); `npm run check -- --fix` applies Biome's safe fixes and formatting.
//   - Biome: lint and format (biome.json);
//   - madge: no import cycle, across packages too (workspace imports resolve to their source);
//   - knip: no unused file, export, type or dependency (knip.json).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import madge from 'madge';
import { ROOT, log, run } from './lib/setup.mjs';

const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);
const fix = process.argv.includes('--fix');

log(fix ? 'biome: applying fixes and formatting' : 'biome: lint and format');
// Plain text when not on a terminal (CI logs): Biome would otherwise colour every character.
const colors = process.stderr.isTTY ? [] : ['--colors=off'];
run(bin('biome'), fix ? ['check', '--write', ...colors, '.'] : ['ci', '--error-on-warnings', ...colors, '.']);

log('madge: import cycles');
const cycles = await importCycles();
if (cycles.length > 0) {
  for (const cycle of cycles) process.stderr.write(`  cycle: ${cycle.join(' -> ')}\n`);
  throw new Error(`madge found ${cycles.length} import cycle(s)`);
}

log('knip: unused files, exports and dependencies');
run(bin('knip'), ['--no-progress']);
log('checks passed');

/**
 * madge follows relative imports by itself; `paths` built from each workspace package's
 * `@longhaul/source` export conditions let it follow `@longhaul/db`, `@longhaul/db/testing`, … into
 * their source, so a cycle between packages is found as well as one inside a package.
 */
async function importCycles() {
  const paths = {};
  for (const group of ['apps', 'packages']) {
    for (const dir of readdirSync(path.join(ROOT, group))) {
      const manifest = JSON.parse(readFileSync(path.join(ROOT, group, dir, 'package.json'), 'utf8'));
      for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
        const source = typeof target === 'object' ? target['@longhaul/source'] : undefined;
        if (source) paths[path.posix.join(manifest.name, subpath)] = [path.posix.join(group, dir, source)];
      }
    }
  }
  const result = await madge(
    ['apps', 'packages', 'scripts', 'test', 'bench', 'chaos'].map((d) => path.join(ROOT, d)),
    {
      baseDir: ROOT,
      fileExtensions: ['ts', 'mjs'],
      excludeRegExp: [/node_modules/, /\/dist\//],
      tsConfig: { compilerOptions: { baseUrl: ROOT, paths, module: 'nodenext', moduleResolution: 'nodenext', allowImportingTsExtensions: true } },
      detectiveOptions: { ts: { skipTypeImports: false }, es6: { skipTypeImports: false } },
    },
  );
  const unresolved = Object.keys(result.warnings().skipped ?? {}).filter((name) => name.startsWith('@longhaul/'));
  if (unresolved.length > 0) throw new Error(`madge could not resolve ${unresolved.join(', ')}: add a "@longhaul/source" export condition`);
  return result.circular();
}
