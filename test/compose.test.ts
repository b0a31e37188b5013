/**
 * The container set-up (Dockerfile, .dockerignore, docker-compose.yml) checked without a Docker
 * engine: what `docker compose up` would hand each app is worked out here (interpolation included)
 * and fed to that app's own `loadEnv`, so a renamed variable or a service the URLs do not name fails
 * here instead of in a container at start-up. The compose file is also validated against the
 * Compose Specification's JSON schema (the copy that the `dclint` package ships). Every command the
 * image runs must name a file that `npm run build` emits: the emitted files are worked out from each
 * package's tsconfig.build.json by the TypeScript compiler's own API, without building.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import ts from 'typescript';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_FOLDER } from '@longhaul/db';
import { loadEnv as loadApiEnv } from '../apps/api/src/env.ts';
import { loadEnv as loadSimEnv } from '../apps/sim/src/env.ts';
import { loadEnv as loadWorkerEnv } from '../apps/worker/src/env.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

type HostEnv = Record<string, string | undefined>;
type EnvValue = string | number | boolean | null;
interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, EnvValue> | string[];
  ports?: (string | number | { target: number; published?: string | number; host_ip?: string })[];
  volumes?: (string | { type?: string; source?: string; target: string })[];
  healthcheck?: { test?: string | string[]; disable?: boolean };
  depends_on?: string[] | Record<string, { condition?: string }>;
  deploy?: { replicas?: number };
  container_name?: string;
  stop_grace_period?: string;
}
interface ComposeFile {
  version?: string;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

const APPS = {
  // `entry`: the source, `dist`: what the build emits from it and the image runs.
  // `server`: the file that defines the route the health check requests (the API's probes live in ops.ts).
  api: { entry: 'apps/api/src/index.ts', dist: 'apps/api/dist/index.js', env: 'apps/api/src/env.ts', server: 'apps/api/src/ops.ts', port: 3000 },
  worker: { entry: 'apps/worker/src/index.ts', dist: 'apps/worker/dist/index.js', env: 'apps/worker/src/env.ts', server: null, port: null },
  sim: { entry: 'apps/sim/src/index.ts', dist: 'apps/sim/dist/index.js', env: 'apps/sim/src/env.ts', server: 'apps/sim/src/server.ts', port: 3100 },
} as const;
/** The operator CLI (migrate, create-tenant, tenant limits): not a service, run with `docker compose run`. */
const CLI = { entry: 'apps/cli/src/index.ts', dist: 'apps/cli/dist/index.js' } as const;
type AppName = keyof typeof APPS;
const APP_NAMES = Object.keys(APPS) as AppName[];

const rawCompose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile & Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Compose semantics that the checks need: interpolation, environment, ports, durations.

/** `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?message}`, `${VAR?message}`, `${VAR:+alt}`, `$VAR`, `$$`. */
function interpolate(text: string, host: HostEnv): string {
  return text.replace(
    /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_match, dollar?: string, braced?: string, op?: string, arg?: string, bare?: string) => {
      if (dollar) return '$';
      const name = (braced ?? bare)!;
      const value = host[name];
      const unset = value === undefined;
      const empty = unset || value === '';
      switch (op) {
        case undefined:
          return value ?? '';
        case ':-':
          return empty ? arg! : value!;
        case '-':
          return unset ? arg! : value!;
        case ':?':
        case '?':
          if (op === ':?' ? empty : unset) throw new Error(`required variable ${name} is missing: ${arg}`);
          return value!;
        case ':+':
          return empty ? '' : arg!;
        case '+':
          return unset ? '' : arg!;
        default:
          throw new Error(`unsupported interpolation ${op}`);
      }
    },
  );
}

function interpolateAll<T>(node: T, host: HostEnv): T {
  if (typeof node === 'string') return interpolate(node, host) as T;
  if (Array.isArray(node)) return node.map((item) => interpolateAll(item, host)) as T;
  if (node && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, interpolateAll(v, host)])) as T;
  }
  return node;
}

function resolveCompose(host: HostEnv): ComposeFile {
  return interpolateAll(rawCompose, host);
}

/** What a container's process.env gets from `environment:`; a key without a value passes the host's through. */
function containerEnv(service: Service, host: HostEnv): Record<string, string> {
  const entries: [string, EnvValue][] = Array.isArray(service.environment)
    ? service.environment.map((line) => {
        const eq = line.indexOf('=');
        return eq < 0 ? [line, null] : [line.slice(0, eq), line.slice(eq + 1)];
      })
    : Object.entries(service.environment ?? {});
  const env: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (value === null) {
      if (host[key] !== undefined) env[key] = host[key]!;
    } else {
      env[key] = String(value);
    }
  }
  return env;
}

function published(service: Service): { host: number; container: number; hostIp?: string }[] {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'object') return { host: Number(port.published ?? port.target), container: port.target, hostIp: port.host_ip };
    const parts = String(port).split(':');
    const container = Number(parts.at(-1));
    const hostPort = parts.length >= 2 ? Number(parts.at(-2)) : container;
    return { host: hostPort, container, hostIp: parts.length === 3 ? parts[0] : undefined };
  });
}

function commandLine(service: Service): string[] {
  const { command } = service;
  if (command === undefined) return [];
  return Array.isArray(command) ? command : command.split(/\s+/);
}

function durationMs(value: string): number {
  let total = 0;
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  const pattern = /(\d+(?:\.\d+)?)(ms|us|h|m|s)/g;
  let rest = value;
  for (const [match, amount, unit] of value.matchAll(pattern)) {
    total += Number(amount) * units[unit!]!;
    rest = rest.replace(match, '');
  }
  if (rest !== '') throw new Error(`not a compose duration: ${value}`);
  return total;
}

/** The variable names an app's zod schema declares (the `KEY:` lines of its env.ts). */
function declaredEnvKeys(envFile: string): Set<string> {
  return new Set([...read(envFile).matchAll(/^\s+([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!));
}

// ---------------------------------------------------------------------------------------------
// What `npm run build` emits: for each workspace package, its tsconfig.build.json as tsc reads it.

function workspacePackages(): string[] {
  return ['apps', 'packages'].flatMap((dir) =>
    readdirSync(path.join(ROOT, dir))
      .map((name) => `${dir}/${name}`)
      .filter((pkg) => existsSync(path.join(ROOT, pkg, 'package.json'))),
  );
}

/** The build's tsc options and output files (repository-relative) for one package. */
function buildOf(pkg: string): { options: ts.CompilerOptions; outputs: Map<string, string> } {
  const configFile = path.join(ROOT, pkg, 'tsconfig.build.json');
  const parsed = ts.getParsedCommandLineOfConfigFile(
    configFile,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!parsed) throw new Error(`cannot read ${configFile}`);
  expect(
    parsed.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    configFile,
  ).toEqual([]);
  const outputs = new Map<string, string>();
  for (const file of parsed.fileNames) {
    for (const out of ts.getOutputFileNames(parsed, file, false)) outputs.set(path.relative(ROOT, out), path.relative(ROOT, file));
  }
  return { options: parsed.options, outputs };
}

/** Every file the build emits, mapped to the source it comes from. */
const emitted = new Map(workspacePackages().flatMap((pkg) => [...buildOf(pkg).outputs]));

// ---------------------------------------------------------------------------------------------
// The Dockerfile, read as instructions (continuation lines joined, comments dropped).

interface Instruction {
  op: string;
  args: string;
  stage: number;
}
function dockerfileInstructions(): Instruction[] {
  const joined = read('Dockerfile')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const out: Instruction[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!match) continue;
    const op = match[1]!.toUpperCase();
    if (op === 'FROM') stage += 1;
    out.push({ op, args: match[2]!.trim(), stage });
  }
  return out;
}

function dockerignoreExcludes(file: string): boolean {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  expect(
    patterns.some((p) => p.startsWith('!')),
    'the matcher below does not handle ! exceptions',
  ).toBe(false);
  const regexes = patterns.map((p) => {
    const body = p
      .replace(/^\/+/, '')
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*\*\//g, '<globstar/>')
      .replace(/\*\*/g, '.*')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')
      .replace(/<globstar\/>/g, '(?:.*/)?');
    return new RegExp(`^${body}$`);
  });
  // A pattern that matches a directory excludes everything under it.
  const segments = file.split('/');
  return segments.some((_, i) => {
    const prefix = segments.slice(0, i + 1).join('/');
    return regexes.some((re) => re.test(prefix));
  });
}

function workspaceManifests(): string[] {
  const manifests = ['package.json', 'pnpm-lock.yaml', 'pnpm-workspace.yaml'];
  for (const dir of ['apps', 'packages']) {
    for (const name of readdirSync(path.join(ROOT, dir))) {
      if (existsSync(path.join(ROOT, dir, name, 'package.json'))) manifests.push(`${dir}/${name}/package.json`);
    }
  }
  return manifests;
}

// ---------------------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  const EMPTY_HOST: HostEnv = {};
  const compose = resolveCompose(EMPTY_HOST);
  const { services } = compose;

  it('is a valid Compose Specification file without the obsolete version key', () => {
    const require = createRequire(import.meta.url);
    const schemaFile = path.join(path.dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
    // The schema names draft-07 by its https URL, which Ajv only knows as http; the content is draft-07.
    const { $schema: _draft, ...schema } = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<string, unknown>;
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(schema);
    for (const host of [EMPTY_HOST, { OPENAI_API_KEY: 'sk-test', LONGHAUL_BOOTSTRAP_API_KEY: 'a-key-of-sixteen-chars' }]) {
      const ok = validate(resolveCompose(host));
      expect(ok, ajv.errorsText(validate.errors, { separator: '\n' })).toBe(true);
    }
    expect(rawCompose).not.toHaveProperty('version');
  });

  it('defines postgres, redis, sim, api and worker', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'postgres', 'redis', 'sim', 'worker']);
    expect(services.postgres!.image).toMatch(/^postgres:15(\.|$|-)/);
    expect(services.redis!.image).toMatch(/^redis:7(\.|$|-)/);
  });

  it('runs Redis durable for BullMQ: AOF every second and no eviction', () => {
    const command = commandLine(services.redis!).join(' ');
    expect(command).toMatch(/^redis-server\b/);
    expect(command).toMatch(/--appendonly yes\b/);
    expect(command).toMatch(/--appendfsync everysec\b/);
    expect(command).toMatch(/--maxmemory-policy noeviction\b/);
  });

  it('keeps Postgres and Redis data in declared named volumes', () => {
    const targets = { postgres: '/var/lib/postgresql/data', redis: '/data' } as const;
    for (const [name, target] of Object.entries(targets)) {
      const mounts = (services[name]!.volumes ?? []).map((v) =>
        typeof v === 'string' ? { source: v.split(':')[0]!, target: v.split(':')[1]! } : { source: v.source ?? '', target: v.target },
      );
      const data = mounts.find((m) => m.target === target);
      expect(data, `${name} mounts ${target}`).toBeDefined();
      expect(Object.keys(compose.volumes ?? {}), `${name}'s volume is declared at the top level`).toContain(data!.source);
    }
  });

  it('gives Postgres and Redis health checks and starts api and worker only once both are healthy', () => {
    expect(commandLine({ command: services.postgres!.healthcheck?.test }).join(' ')).toMatch(/pg_isready\b.*-d longhaul/);
    expect(commandLine({ command: services.redis!.healthcheck?.test }).join(' ')).toMatch(/redis-cli ping/);
    for (const name of ['api', 'worker']) {
      const deps = services[name]!.depends_on;
      expect(Array.isArray(deps), `${name}.depends_on uses the long form with conditions`).toBe(false);
      for (const dep of ['postgres', 'redis']) {
        expect((deps as Record<string, { condition?: string }>)[dep]?.condition, `${name} waits for ${dep}`).toBe('service_healthy');
      }
    }
  });

  it('creates the database that the app URLs name, with the password they carry', () => {
    const pg = containerEnv(services.postgres!, EMPTY_HOST);
    expect(pg.POSTGRES_DB).toBe('longhaul');
    expect(pg.POSTGRES_PASSWORD).toBeTruthy();
    for (const host of [EMPTY_HOST, { POSTGRES_PASSWORD: 'from-the-shell' }]) {
      const resolved = resolveCompose(host).services;
      const password = containerEnv(resolved.postgres!, host).POSTGRES_PASSWORD;
      for (const name of ['api', 'worker'] as const) {
        const url = new URL(containerEnv(resolved[name]!, host).DATABASE_URL!);
        expect(url.hostname).toBe('postgres');
        expect(url.pathname).toBe('/longhaul');
        expect(decodeURIComponent(url.password)).toBe(password);
      }
    }
  });

  describe.each(APP_NAMES)('%s', (name) => {
    const app = APPS[name];
    const service = services[name]!;
    const hosts: HostEnv[] = [EMPTY_HOST, { OPENAI_API_KEY: 'sk-test', LONGHAUL_BOOTSTRAP_API_KEY: 'a-key-of-sixteen-chars' }];

    it('sets only variables that its env.ts declares', () => {
      const declared = declaredEnvKeys(app.env);
      expect(declared.size).toBeGreaterThan(3);
      for (const host of hosts) {
        const set = Object.keys(containerEnv(resolveCompose(host).services[name]!, host));
        expect(set.filter((key) => !declared.has(key))).toEqual([]);
      }
    });

    it('starts with a configuration its loadEnv accepts', () => {
      const loaders = { api: loadApiEnv, worker: loadWorkerEnv, sim: loadSimEnv };
      for (const host of hosts) {
        expect(() => loaders[name](containerEnv(resolveCompose(host).services[name]!, host))).not.toThrow();
      }
    });

    it(`runs ${app.dist}, compiled from ${app.entry}, with plain node from the shared image`, () => {
      expect(commandLine(service)).toEqual(['node', app.dist]);
      expect(emitted.get(app.dist), `the build emits ${app.dist}`).toBe(app.entry);
      const build = typeof service.build === 'string' ? { context: service.build } : service.build;
      expect(build?.context).toBe('.');
      expect(service.image).toBe(services.api!.image);
    });

    if (app.port !== null) {
      it(`listens on all interfaces on ${app.port}, published, with a health check on a real route`, () => {
        const port = app.port;
        const env = containerEnv(service, EMPTY_HOST);
        const listen = name === 'sim' ? loadSimEnv(env) : loadApiEnv(env);
        const [host, listenPort] = 'host' in listen ? [listen.host, listen.port] : [listen.HOST, listen.PORT];
        expect(host).toBe('0.0.0.0');
        expect(listenPort).toBe(port);
        expect(published(service)).toContainEqual(expect.objectContaining({ host: port, container: port }));

        const check = commandLine({ command: service.healthcheck?.test }).join(' ');
        const target = /http:\/\/(?:127\.0\.0\.1|localhost):(\d+)(\/[^'"\s)]*)/.exec(check);
        expect(target, `health check of ${name} requests its own port: ${check}`).not.toBeNull();
        expect(Number(target![1])).toBe(port);
        expect(read(app.server!)).toContain(`'${target![2]}'`);
      });
    }
  });

  it('points api and worker at the same Postgres, Redis and queue prefix', () => {
    const api = loadApiEnv(containerEnv(services.api!, EMPTY_HOST));
    const worker = loadWorkerEnv(containerEnv(services.worker!, EMPTY_HOST));
    expect(worker.DATABASE_URL).toBe(api.DATABASE_URL);
    expect(worker.REDIS_URL).toBe(api.REDIS_URL);
    expect(new URL(api.REDIS_URL).hostname).toBe('redis');
    expect(worker.QUEUE_PREFIX).toBe(api.QUEUE_PREFIX);
  });

  it('creates a bootstrap API key for local use, overridable from the shell', () => {
    expect(loadApiEnv(containerEnv(services.api!, EMPTY_HOST)).LONGHAUL_BOOTSTRAP_API_KEY).toBeTruthy();
    const host = { LONGHAUL_BOOTSTRAP_API_KEY: 'a-key-of-sixteen-chars' };
    expect(loadApiEnv(containerEnv(resolveCompose(host).services.api!, host)).LONGHAUL_BOOTSTRAP_API_KEY).toBe(host.LONGHAUL_BOOTSTRAP_API_KEY);
  });

  it('sends the workers to the simulator unless OPENAI_BASE_URL is set, and passes OPENAI_API_KEY through', () => {
    const worker = loadWorkerEnv(containerEnv(services.worker!, EMPTY_HOST));
    const base = new URL(worker.OPENAI_BASE_URL!);
    expect(base.hostname).toBe('sim');
    expect(Number(base.port)).toBe(loadSimEnv(containerEnv(services.sim!, EMPTY_HOST)).port);
    expect(base.pathname).toBe('/v1');
    expect(worker.OPENAI_API_KEY).toBeUndefined();

    const host = { OPENAI_BASE_URL: 'https://api.openai.com/v1', OPENAI_API_KEY: 'sk-test' };
    const real = loadWorkerEnv(containerEnv(resolveCompose(host).services.worker!, host));
    expect(real.OPENAI_BASE_URL).toBe(host.OPENAI_BASE_URL);
    expect(real.OPENAI_API_KEY).toBe(host.OPENAI_API_KEY);
  });

  it('runs several workers and lets each drain before it is killed', () => {
    const worker = services.worker!;
    expect(worker.deploy?.replicas).toBeGreaterThanOrEqual(2);
    expect(worker.container_name, 'a fixed container name prevents scaling').toBeUndefined();
    expect(worker.ports ?? [], 'published ports would clash between replicas').toEqual([]);
    const shutdown = loadWorkerEnv(containerEnv(worker, EMPTY_HOST)).SHUTDOWN_TIMEOUT_MS;
    expect(durationMs(worker.stop_grace_period ?? '10s')).toBeGreaterThan(shutdown);
    const apiShutdown = loadApiEnv(containerEnv(services.api!, EMPTY_HOST)).SHUTDOWN_TIMEOUT_MS;
    expect(durationMs(services.api!.stop_grace_period ?? '10s')).toBeGreaterThan(apiShutdown);
  });
});

describe('Dockerfile', () => {
  const instructions = dockerfileInstructions();
  const finalStage = Math.max(...instructions.map((i) => i.stage));
  const final = instructions.filter((i) => i.stage === finalStage);
  const args = new Map(instructions.filter((i) => i.op === 'ARG' && i.stage === -1).map((i) => i.args.split('=') as [string, string]));
  const baseImage = (from: string): string => from.split(/\s+/)[0]!.replace(/^\$\{?(\w+)\}?$/, (_m, name: string) => args.get(name) ?? _m);
  /** Stage name → its instructions, FROM included (a stage based on another one inherits its RUNs). */
  const stageNames = new Map(instructions.filter((i) => i.op === 'FROM').map((i) => [i.stage, /\sAS\s+(\S+)$/i.exec(i.args)?.[1] ?? String(i.stage)]));
  const stage = (name: string): Instruction[] => {
    const index = [...stageNames].find(([, n]) => n === name)?.[0];
    expect(index, `a stage named ${name}`).toBeDefined();
    return instructions.filter((i) => i.stage === index);
  };
  const runsOf = (name: string): string[] => {
    const own = stage(name);
    const parent = baseImage(own[0]!.args);
    const inherited = [...stageNames.values()].includes(parent) ? runsOf(parent) : [];
    return [...inherited, ...own.filter((i) => i.op === 'RUN').map((i) => i.args)];
  };
  /** `COPY --from=<stage> <src> <dest>` of the final stage, parsed. */
  const finalCopies = final
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const [src, dest] = words.filter((w) => !w.startsWith('--'));
      return { from, src: src!, dest: dest! };
    });
  const cmd = JSON.parse(final.filter((i) => i.op === 'CMD').at(-1)!.args) as string[];

  it('builds on node:20-bookworm-slim', () => {
    const bases = instructions.filter((i) => i.op === 'FROM').map((i) => baseImage(i.args));
    const external = bases.filter((b) => !instructions.some((i) => i.op === 'FROM' && new RegExp(`\\sAS\\s+${b}$`, 'i').test(i.args)));
    expect(new Set(external)).toEqual(new Set(['node:20-bookworm-slim']));
  });

  it('installs the pnpm that package.json pins, every locked dependency to build, and runs the build', () => {
    const pinned = (JSON.parse(read('package.json')) as { packageManager: string }).packageManager;
    const runs = instructions.filter((i) => i.op === 'RUN').map((i) => i.args);
    expect(runs.some((r) => r.includes(`npm install --global ${pinned}`) || r.includes(`npm i -g ${pinned}`))).toBe(true);
    const build = runsOf('build');
    expect(build.some((r) => /pnpm install\b.*--frozen-lockfile\b.*--prod=false/.test(r))).toBe(true);
    // The same turbo task as `npm run build` (which wraps it to find pnpm on a machine without one).
    expect(build.some((r) => /\bpnpm exec turbo run build\b/.test(r))).toBe(true);
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.build).toBe('node scripts/turbo.mjs build');
  });

  it('gives the runtime stage production dependencies only: no install of its own, no sources, no dev tools', () => {
    expect(
      final.filter((i) => i.op === 'RUN'),
      'the runtime stage installs nothing itself',
    ).toEqual([]);
    expect(finalCopies.length).toBeGreaterThan(0);
    for (const copy of finalCopies) expect(copy.from, `COPY ${copy.src}: from another stage, never the build context`).toBeDefined();
    // node_modules come from a stage whose only install is the production one.
    const depsStage = finalCopies.find((c) => c.src === '/app/')!.from!;
    const installs = runsOf(depsStage).filter((r) => /\bpnpm install\b/.test(r));
    expect(installs).toHaveLength(1);
    expect(installs[0]).toMatch(/pnpm install\b.*--frozen-lockfile\b/);
    expect(installs[0]).toMatch(/--prod(\s|$)/);
    expect(installs[0]).not.toMatch(/--prod=false|--dev\b/);
    // From the build stage: only what scripts/collect-runtime.sh gathered (dist/, manifests, data, migrations).
    for (const copy of finalCopies.filter((c) => c.from !== depsStage)) {
      expect(copy.from).toBe('build');
      const collect = runsOf('build').find((r) => r.includes('scripts/collect-runtime.sh'));
      expect(collect, 'the build stage collects the runtime files').toBeDefined();
      expect(collect).toContain(`collect-runtime.sh ${copy.src.replace(/\/$/, '')}`);
    }
    const collectScript = read('scripts/collect-runtime.sh');
    for (const left of ['src', 'test', 'node_modules', "'tsconfig*.json'", "'*.ts'"]) expect(collectScript).toContain(`! -name ${left}`);
  });

  it('runs as a non-root user in production mode', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
    expect(user).toBeDefined();
    expect(['root', '0', '0:0']).not.toContain(user);
    expect(final.some((i) => i.op === 'ENV' && /\bNODE_ENV=production\b/.test(i.args))).toBe(true);
  });

  it('starts, by default, the compiled API with plain node', () => {
    expect(cmd).toEqual(['node', APPS.api.dist]);
    expect(emitted.get(cmd[1]!)).toBe(APPS.api.entry);
  });

  it('documents, in its header, a command for every app and the CLI, each a file the build emits', () => {
    const header = read('Dockerfile')
      .split('\n')
      .filter((line) => line.startsWith('#'));
    const documented = header.map((line) => /^#\s+node (\S+)/.exec(line)?.[1]).filter((file): file is string => Boolean(file));
    expect(documented.sort()).toEqual([...APP_NAMES.map((n) => APPS[n].dist), CLI.dist].sort());
    for (const file of documented) expect(emitted.has(file), `the build emits ${file}`).toBe(true);
    expect(emitted.get(CLI.dist)).toBe(CLI.entry);
  });

  it('finds the migrations from compiled @longhaul/db as from its source, and ships them', () => {
    // MIGRATIONS_FOLDER is resolved relative to migrate.ts's own location; its compiled copy must
    // sit at the same depth for the same relative path to reach the repository's migrations/.
    expect(MIGRATIONS_FOLDER).toBe(path.join(ROOT, 'migrations'));
    const compiled = [...emitted].find(([, source]) => source === 'packages/db/src/migrate.ts')?.[0];
    expect(compiled).toBe('packages/db/dist/migrate.js');
    const fromSource = path.relative(path.join(ROOT, 'packages/db/src'), MIGRATIONS_FOLDER);
    expect(path.resolve(ROOT, path.dirname(compiled!), fromSource)).toBe(MIGRATIONS_FOLDER);
    expect(read('scripts/collect-runtime.sh')).toMatch(/cp -R migrations "\$out\/migrations"/);
  });

  it('sends the sources, build configuration and manifests to the build, but not node_modules, .git or a local dist/', () => {
    expect(dockerignoreExcludes('node_modules')).toBe(true);
    expect(dockerignoreExcludes('apps/api/node_modules/express/package.json')).toBe(true);
    expect(dockerignoreExcludes('.git/HEAD')).toBe(true);
    expect(dockerignoreExcludes('apps/api/dist/index.js')).toBe(true);
    const buildConfig = [
      'tsconfig.base.json',
      'tsconfig.build.base.json',
      'turbo.json',
      'scripts/collect-runtime.sh',
      ...workspacePackages().flatMap((pkg) => [`${pkg}/tsconfig.json`, `${pkg}/tsconfig.build.json`]),
    ];
    const sources = [...emitted.values()];
    const needed = [...workspaceManifests(), ...buildConfig, ...sources, ...readdirSync(path.join(ROOT, 'migrations')).map((f) => `migrations/${f}`)];
    expect(sources).toContain(CLI.entry);
    expect(needed.filter(dockerignoreExcludes)).toEqual([]);
  });
});
