/**
 * `longhaul migrate` and `longhaul tenant …`: the operator commands, which talk to Postgres
 * (DATABASE_URL), not to the API. They are @longhaul/cli's (apps/cli), run as a child process with
 * this process's stdio, so this package never depends on the database packages: @longhaul/cli is an
 * optional peer, looked up only when one of these commands is used, with a clear message when it is
 * not installed. Run from TypeScript sources (the monorepo), the child runs apps/cli's sources with
 * the same loader flags; run compiled, it runs apps/cli's compiled dist/.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from './args.ts';

/** `longhaul tenant create <name>` is apps/cli's `create-tenant <name>`; the rest keep their words. */
function operatorArgs(command: string, args: string[]): string[] {
  if (command === 'tenant' && args[0] === 'create') return ['create-tenant', ...args.slice(1)];
  return [command, ...args];
}

function cliPackageDir(): string | null {
  try {
    return path.dirname(fileURLToPath(import.meta.resolve('@longhaul/cli/package.json')));
  } catch {
    return null;
  }
}

/** Runs the operator command; resolves with its exit code. */
export async function runOperatorCommand(command: string, args: string[]): Promise<number> {
  const dir = cliPackageDir();
  if (!dir) {
    throw new UsageError(
      `'longhaul ${command}' is an operator command of @longhaul/cli, which is not installed here. Run it where Longhaul is deployed (it needs DATABASE_URL), e.g. 'npm run migrate' in the Longhaul repository.`,
    );
  }
  const fromSource = import.meta.url.endsWith('.ts');
  const entry = path.join(dir, fromSource ? 'src/index.ts' : 'dist/index.js');
  if (!existsSync(entry)) throw new UsageError(`@longhaul/cli is not built (${entry} is missing): run 'npm run build' in the Longhaul repository.`);
  const nodeArgs = fromSource ? [...process.execArgv, entry] : [entry];
  const child = spawn(process.execPath, [...nodeArgs, ...operatorArgs(command, args)], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward).on('SIGTERM', forward);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward).off('SIGTERM', forward);
      resolve(code ?? (signal ? 1 : 0));
    });
  });
}
