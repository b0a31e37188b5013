#!/usr/bin/env node
/**
 * The `longhaul` command. API commands go through the typed client, configured by LONGHAUL_URL
 * and LONGHAUL_API_KEY (or --url / --api-key); the operator commands (`migrate`, `tenant …`) are
 * @longhaul/cli's and need DATABASE_URL instead (cli/operator.ts).
 *
 *   longhaul jobs submit --model o3 --input @question.txt [--instructions …] [--effort high]
 *                        [--metadata k=v …] [--idempotency-key K] [--wait [--timeout SECONDS]]
 *   longhaul jobs get|cancel|events <id> | jobs watch <id> [--timeout SECONDS]
 *   longhaul jobs list [--limit N] [--status S] [--after job_…]
 *   longhaul prompts list [--limit N] [--after prm_…] | prompts get <id>
 *   longhaul usage [--group-by model|day|prompt_version] [--from …] [--to …] [--json]
 *   longhaul migrate | tenant create <name> | tenant limits|keys|erase …
 *
 * Exit codes: 0 done (a waited-for job completed), 1 the job failed, was cancelled, expired or is
 * incomplete (or --timeout passed first), 2 a usage error, 3 an API error (its code is printed).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { Job, JobCreateParams, JobStatus } from './api-types.ts';
import { UsageError, onlyId, parseCount, parsePairs, readInput } from './cli/args.ts';
import { runOperatorCommand } from './cli/operator.ts';
import { createProgress } from './cli/progress.ts';
import { usageTable } from './cli/usage-table.ts';
import { type LonghaulClient, createClient } from './client.ts';
import { LonghaulError, WaitTimeoutError } from './errors.ts';

const EXIT = { done: 0, jobNotCompleted: 1, usage: 2, api: 3 } as const;

const HELP = `usage: longhaul <command>
  jobs submit --model o3 --input @question.txt [--instructions TEXT] [--effort low|medium|high]
              [--metadata k=v ...] [--idempotency-key KEY] [--wait [--timeout SECONDS]]
  jobs get|cancel|events <job_id>  |  jobs watch <job_id> [--timeout SECONDS]
  jobs list [--limit N] [--status STATUS] [--after JOB_ID]
  prompts list [--limit N] [--after PROMPT_ID]  |  prompts get <prompt_id>
  usage [--group-by model|day|prompt_version] [--from DATE] [--to DATE] [--json]
  migrate  |  tenant create <name>  |  tenant limits|keys|erase ...   (operator: DATABASE_URL)
options: --url (LONGHAUL_URL, default http://localhost:3000), --api-key (LONGHAUL_API_KEY)`;

const GLOBAL = { url: { type: 'string' }, 'api-key': { type: 'string' }, help: { type: 'boolean', short: 'h' } } as const;

type Options = NonNullable<ParseArgsConfig['options']>;

function parse<const O extends Options>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...GLOBAL, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function clientFrom(values: { url?: string | boolean; 'api-key'?: string | boolean }): LonghaulClient {
  const baseUrl = (typeof values.url === 'string' ? values.url : undefined) ?? (process.env.LONGHAUL_URL || 'http://localhost:3000');
  const apiKey = (typeof values['api-key'] === 'string' ? values['api-key'] : undefined) ?? process.env.LONGHAUL_API_KEY;
  if (!apiKey) throw new UsageError('no API key: set LONGHAUL_API_KEY or pass --api-key');
  try {
    new URL(baseUrl);
  } catch {
    throw new UsageError(`LONGHAUL_URL / --url is not a URL: '${baseUrl}'`);
  }
  return createClient({ baseUrl, apiKey });
}

/** A result: pretty on a terminal, one line otherwise. */
function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, process.stdout.isTTY ? 2 : undefined)}\n`);
}

const exitFor = (job: Job) => (job.status === 'completed' ? EXIT.done : EXIT.jobNotCompleted);

/** Follow a job to its end with live progress; the exit code says how it ended. */
async function follow(client: LonghaulClient, job: Job, timeoutSeconds: number | undefined): Promise<number> {
  const progress = createProgress({ write: (t) => process.stdout.write(t), isTTY: process.stdout.isTTY, columns: process.stdout.columns }, job);
  // Ctrl-C stops watching, not the job; say so on a fresh line.
  process.once('SIGINT', () => {
    process.stderr.write(`\nlonghaul: stopped watching ${job.id} (the job goes on)\n`);
    process.exit(130);
  });
  try {
    const final = await client.jobs.wait(job.id, {
      timeoutMs: timeoutSeconds === undefined ? undefined : timeoutSeconds * 1000,
      onEvent: (e) => progress.event(e),
      onPoll: (j) => progress.poll(j),
    });
    progress.done(final);
    return exitFor(final);
  } catch (err) {
    progress.stop();
    throw err;
  }
}

async function submit(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    model: { type: 'string' },
    input: { type: 'string' },
    instructions: { type: 'string' },
    effort: { type: 'string' },
    metadata: { type: 'string', multiple: true },
    'idempotency-key': { type: 'string' },
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (!values.model) throw new UsageError('jobs submit needs --model');
  if (values.input === undefined) throw new UsageError('jobs submit needs --input (text, @file or - for stdin)');
  if (values.effort !== undefined && !['minimal', 'low', 'medium', 'high'].includes(values.effort))
    throw new UsageError(`--effort is minimal, low, medium or high, not '${values.effort}'`);
  const timeout = parseCount('timeout', values.timeout);
  const client = clientFrom(values);
  const params: JobCreateParams = { model: values.model, input: await readInput(values.input) };
  if (values.instructions !== undefined) params.instructions = values.instructions;
  if (values.effort !== undefined) params.reasoning = { effort: values.effort as 'minimal' | 'low' | 'medium' | 'high' };
  const metadata = parsePairs('metadata', values.metadata);
  if (metadata) params.metadata = metadata;
  // Waiting on it: have the provider's events streamed, so tokens show as they come.
  if (values.wait) params.stream = true;
  const job = await client.jobs.create(params, { idempotencyKey: values['idempotency-key'] });
  if (!values.wait) {
    print(job);
    return EXIT.done;
  }
  return follow(client, job, timeout);
}

async function jobs(sub: string | undefined, args: string[]): Promise<number> {
  if (sub === 'submit') return submit(args);
  if (sub === 'list') {
    const { values } = parse(args, { limit: { type: 'string' }, status: { type: 'string' }, after: { type: 'string' } });
    const client = clientFrom(values);
    print(await client.jobs.list({ limit: parseCount('limit', values.limit), status: values.status as JobStatus | undefined, after: values.after }));
    return EXIT.done;
  }
  if (sub === 'get' || sub === 'cancel' || sub === 'events' || sub === 'watch') {
    const { values, positionals } = parse(args, sub === 'watch' ? { timeout: { type: 'string' } } : {});
    const id = onlyId(`jobs ${sub}`, positionals);
    const client = clientFrom(values);
    if (sub === 'watch') {
      const timeout = parseCount('timeout', typeof values.timeout === 'string' ? values.timeout : undefined);
      return follow(client, await client.jobs.get(id), timeout);
    }
    print(await (sub === 'get' ? client.jobs.get(id) : sub === 'cancel' ? client.jobs.cancel(id) : client.jobs.events(id)));
    return EXIT.done;
  }
  throw new UsageError(`unknown command 'jobs ${sub ?? ''}'`);
}

async function prompts(sub: string | undefined, args: string[]): Promise<number> {
  if (sub === 'list') {
    const { values } = parse(args, { limit: { type: 'string' }, after: { type: 'string' } });
    print(await clientFrom(values).prompts.list({ limit: parseCount('limit', values.limit), after: values.after }));
    return EXIT.done;
  }
  if (sub === 'get') {
    const { values, positionals } = parse(args, {});
    print(await clientFrom(values).prompts.get(onlyId('prompts get', positionals)));
    return EXIT.done;
  }
  throw new UsageError(`unknown command 'prompts ${sub ?? ''}'`);
}

async function usage(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { 'group-by': { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const groupBy = values['group-by'];
  if (groupBy !== undefined && groupBy !== 'model' && groupBy !== 'day' && groupBy !== 'prompt_version')
    throw new UsageError(`--group-by is model, day or prompt_version, not '${groupBy}'`);
  const report = await clientFrom(values).usage.get({ group_by: groupBy, from: values.from, to: values.to });
  if (values.json) print(report);
  else process.stdout.write(`${usageTable(report)}\n`);
  return EXIT.done;
}

async function run(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${HELP}\n`);
    return command === undefined ? EXIT.usage : EXIT.done;
  }
  if (command === 'migrate' || command === 'tenant') return runOperatorCommand(command, argv.slice(1));
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${HELP}\n`);
    return EXIT.done;
  }
  if (command === 'jobs') return jobs(sub, rest);
  if (command === 'prompts') return prompts(sub, rest);
  if (command === 'usage') return usage(argv.slice(1));
  throw new UsageError(`unknown command '${command}'`);
}

function report(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`longhaul: ${err.message}\n(longhaul --help for usage)\n`);
    return EXIT.usage;
  }
  if (err instanceof WaitTimeoutError) {
    process.stderr.write(`longhaul: ${err.message} (it goes on; longhaul jobs watch <id> to follow it again)\n`);
    return EXIT.jobNotCompleted;
  }
  if (err instanceof LonghaulError) {
    const where = [err.param ? `param ${err.param}` : '', err.status ? `HTTP ${err.status}` : '', err.requestId ? `request ${err.requestId}` : ''].filter(Boolean).join(', ');
    process.stderr.write(`longhaul: error ${err.code}: ${err.message}${where ? ` (${where})` : ''}\n`);
    return EXIT.api;
  }
  process.stderr.write(`longhaul: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.api;
}

process.exitCode = await run(process.argv.slice(2)).catch(report);
