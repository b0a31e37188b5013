/**
 * The Grafana dashboard and the Prometheus rules in deploy/ against what a running Longhaul exports.
 *
 * Every PromQL expression (dashboard targets, variable queries, alert rules) is parsed with the
 * Prometheus project's own grammar (@prometheus-io/lezer-promql); the metric names its selectors
 * name must be families the API or a worker serves on /metrics (histogram selectors by their
 * `_bucket` / `_sum` / `_count` series), and the labels they match on or group by must be labels
 * those families carry. The families come from a real stack that has run jobs (polled, webhooked,
 * failed, with callbacks), plus the process metrics the entrypoints turn on.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { Registry, createMetrics } from '@longhaul/metrics';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { parseMetrics } from './prometheus.ts';

const root = path.resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
/** The datasource every panel and query uses: Grafana's variable, not a fixed uid. */
const DATASOURCE = { type: 'prometheus', uid: ['$', '{DS_PROMETHEUS}'].join('') };
const dashboard = JSON.parse(read('deploy/grafana/longhaul-dashboard.json'));
const alerts = parseYaml(read('deploy/prometheus/longhaul-alerts.yml'));
const prometheusConfig = parseYaml(read('deploy/prometheus/prometheus.yml'));

/** Series Prometheus makes itself: present without Longhaul exporting them. */
const SYNTHETIC: Record<string, Set<string>> = { up: new Set(['job', 'instance']) };
const JOB_NAMES = ['longhaul-api', 'longhaul-worker'];
/** Labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = new Set(['job', 'instance']);

/** Grafana's own variables, replaced by what they stand for so the expression is plain PromQL. */
function grafanaToPromql(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m').replace(/\$\{?(\w+)\}?/g, (_, name: string) => `__var_${name}`);
}

interface Usage {
  metrics: Set<string>;
  /** Label names per metric, from its selector's matchers. */
  matchers: Map<string, Set<string>>;
  /** Label names of by (...) / on (...) / ignoring (...) / without (...). */
  grouping: Set<string>;
  errors: string[];
}

function promqlUsage(expr: string): Usage {
  const text = grafanaToPromql(expr);
  const usage: Usage = { metrics: new Set(), matchers: new Map(), grouping: new Set(), errors: [] };
  const cursor = parser.parse(text).cursor();
  do {
    const node = cursor.node;
    if (node.type.isError) usage.errors.push(`syntax error at ${node.from}: …${text.slice(Math.max(0, node.from - 20), node.to + 20)}…`);
    if (node.name === 'VectorSelector') {
      const ident = node.getChild('Identifier');
      const name = ident ? text.slice(ident.from, ident.to) : '';
      if (!name) usage.errors.push(`a selector without a metric name: ${text.slice(node.from, node.to)}`);
      usage.metrics.add(name);
      const labels = usage.matchers.get(name) ?? new Set<string>();
      for (const matcher of node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
        const label = matcher.getChild('LabelName');
        if (label) labels.add(text.slice(label.from, label.to));
      }
      usage.matchers.set(name, labels);
    }
    if (node.name === 'GroupingLabels') for (const label of node.getChildren('LabelName')) usage.grouping.add(text.slice(label.from, label.to));
  } while (cursor.next());
  return usage;
}

/** A family's name and the label names of its samples (histograms: `le` included). */
type Families = Map<string, Set<string>>;

const HISTOGRAM_SERIES = /_(bucket|sum|count)$/;

function families(exposition: string, into: Families = new Map()): Families {
  const types = new Map<string, string>();
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (m) {
      types.set(m[1]!, m[2]!);
      if (!into.has(m[1]!)) into.set(m[1]!, new Set());
    }
  }
  for (const sample of parseMetrics(exposition)) {
    const base = types.has(sample.name) ? sample.name : sample.name.replace(HISTOGRAM_SERIES, '');
    for (const label of Object.keys(sample.labels)) into.get(base)?.add(label);
  }
  for (const [name, type] of types) {
    // A histogram is selected by its series, which prom-client does not declare on their own.
    if (type === 'histogram' || type === 'summary') for (const suffix of ['_bucket', '_sum', '_count']) into.set(`${name}${suffix}`, into.get(name)!);
  }
  return into;
}

/** Every PromQL expression of the dashboard: panel targets and variable queries, with where they are. */
function dashboardExprs(): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const panel of dashboard.panels) for (const target of panel.targets ?? []) out.push({ where: `panel "${panel.title}" ${target.refId}`, expr: target.expr });
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const query: string = typeof variable.query === 'string' ? variable.query : variable.query.query;
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(query);
    expect(m, `variable ${variable.name}: label_values(metric, label)`).not.toBeNull();
    out.push({ where: `variable ${variable.name}`, expr: `count by (${m![2]}) (${m![1]})` });
  }
  return out;
}

const alertRules = (): any[] => alerts.groups.flatMap((group: any) => group.rules);
const allExprs = () => [...dashboardExprs(), ...alertRules().map((rule) => ({ where: `alert ${rule.alert}`, expr: String(rule.expr) }))];

let stack: Stack;
let receiver: Server;
let exported: Families;
/** Label names of every family, from `recordedOnce()`. */
let everyLabel: Families;

beforeAll(async () => {
  // Webhooks and hybrid completion detection on, so webhook and webhook-health series exist too.
  stack = await startStack({ webhooks: true, worker: { completionMode: 'hybrid', webhookHealth: { refreshMs: 100 } } });
  let calls = 0;
  // Every other callback attempt fails (500), so failure and success both have samples.
  receiver = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls += 1;
      res.writeHead(calls % 2 ? 500 : 200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const callbackUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const bodies = [
    jobBody({ input: 'observability story', callback_url: callbackUrl }, 3_000),
    jobBody({ model: 'gpt-5-mini', input: 'observability mini' }, 100),
    jobBody({ input: 'observability failure', metadata: { sim_duration_ms: '100', sim_outcome: 'failed' } }),
  ];
  const submit = async (body: Record<string, unknown>) => {
    const res = await stack.api('POST', '/v1/jobs', body);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return res.body.id as string;
  };
  const ids: string[] = [];
  for (const body of bodies) ids.push(await submit(body));
  // One create answered 429 first, for the rate-limit series.
  await stack.simApi('POST', '/sim/config', { rate_limit_rate: 1, fault_endpoints: ['create'], retry_after_s: 0 });
  ids.push(await submit(jobBody({ input: 'observability rate limited' }, 100)));
  const limited = Date.now() + 15_000;
  while (!(await stack.workerMetrics.render()).includes('longhaul_provider_rate_limited_total{')) {
    if (Date.now() > limited) throw new Error('no 429 was counted');
    await new Promise((r) => setTimeout(r, 50));
  }
  await stack.simApi('POST', '/sim/config', { rate_limit_rate: 0 });
  await stack.waitForAll(ids, isTerminalJob, 30_000);
  // The callback is retried after its failed attempt until one succeeds.
  const deadline = Date.now() + 15_000;
  while (!/^longhaul_callback_delivery_latency_seconds_count [1-9]/m.test(await stack.workerMetrics.render())) {
    if (Date.now() > deadline) throw new Error('the callback was not delivered');
    await new Promise((r) => setTimeout(r, 100));
  }
  exported = families(await stack.apiMetrics.render());
  families(await stack.workerMetrics.render(), exported);
  // The entrypoints (apps/*/src/index.ts) also collect prom-client's process metrics.
  families(await createMetrics(new Registry(), { processMetrics: true }).render(), exported);
  everyLabel = families(await recordedOnce());
});

/**
 * A scratch registry on which every recorder was called once: the label names of the families this
 * run left without samples (a rejected provider key, a response-cache lookup, ...).
 */
async function recordedOnce(): Promise<string> {
  const m = createMetrics(new Registry());
  const at = new Date();
  m.jobCreated('o3');
  m.jobSubmitted('o3', 1);
  m.jobFinished({
    tenantId: 't',
    model: 'o3',
    status: 'completed',
    createdAt: at,
    submittedAt: at,
    finishedAt: at,
    usage: { input_tokens: 2, input_tokens_details: { cached_tokens: 1 }, output_tokens: 2, output_tokens_details: { reasoning_tokens: 1 } },
    costUsd: 0.01,
    promptId: 'prm_x',
    promptVersion: 1,
  });
  m.providerRequest({ endpoint: 'create', status: 429, durationMs: 1 });
  m.providerKeyRejected('key_x');
  m.providerKeys({ active: 1, retired: 0, rejected: 1 });
  m.poll('terminal');
  m.openaiWebhook('received');
  m.webhookHealth('healthy', 0);
  m.webhookHealthChanged('unknown', 'healthy');
  m.callbackAttempt('success', 1);
  m.callbackDelivered(1);
  m.httpRequest('GET', '/v1/jobs/:id', 200, 1);
  m.responseCache('hit', 1);
  m.setQueueDepthSource(async () => [{ queue: 'submit', state: 'waiting', count: 0 }]);
  return m.render();
}

afterAll(async () => {
  await stack?.stop();
  if (receiver) {
    await new Promise<void>((r) => {
      receiver.close(() => r());
      receiver.closeAllConnections();
    });
  }
});

describe('deploy/grafana/longhaul-dashboard.json', () => {
  it('is a Grafana dashboard on a Prometheus datasource variable, with tenant and model filters', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    const vars = new Map<string, any>(dashboard.templating.list.map((v: any) => [v.name, v]));
    expect(vars.get('DS_PROMETHEUS')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    for (const name of ['tenant', 'model']) {
      expect(vars.get(name)).toMatchObject({ type: 'query', multi: true, includeAll: true, allValue: '.*', datasource: DATASOURCE });
    }
  });

  it('gives every panel a title, a place, the datasource variable and PromQL targets', () => {
    const ids = new Set<number>();
    const panels = dashboard.panels.filter((p: any) => p.type !== 'row');
    expect(panels.length).toBeGreaterThanOrEqual(20);
    for (const panel of dashboard.panels) {
      expect(ids.has(panel.id), `panel id ${panel.id} is unique`).toBe(false);
      ids.add(panel.id);
      expect(panel.title, `panel ${panel.id} has a title`).toMatch(/\S/);
      expect(panel.gridPos.x + panel.gridPos.w, panel.title).toBeLessThanOrEqual(24);
    }
    for (const panel of panels) {
      expect(panel.datasource, panel.title).toEqual(DATASOURCE);
      expect(panel.targets.length, panel.title).toBeGreaterThan(0);
      const refIds = panel.targets.map((t: any) => t.refId);
      expect(new Set(refIds).size, `${panel.title}: refIds are unique`).toBe(refIds.length);
      for (const target of panel.targets) {
        expect(target.datasource, panel.title).toEqual(panel.datasource);
        expect(target.expr, panel.title).toMatch(/\S/);
      }
    }
  });

  it('has the panels an operator looks for', () => {
    const titles = dashboard.panels.map((p: any) => p.title.toLowerCase()).join('\n');
    for (const wanted of [
      'jobs per minute by status',
      'time to terminal p50 / p95',
      'cost per hour by model',
      'cost per hour by tenant',
      'cost per day',
      'cache-hit ratio',
      'webhook vs poll',
      'queue depth',
      'callback failure',
      'callback delivery latency',
      'rate limiting',
      'stuck jobs',
      'processes up',
    ]) {
      expect(titles).toContain(wanted);
    }
    const quantiles = dashboard.panels.find((p: any) => p.title.startsWith('Time to terminal')).targets.map((t: any) => t.expr);
    expect(quantiles).toEqual([
      expect.stringMatching(/^histogram_quantile\(0\.5, sum by \(le, model\) \(rate\(longhaul_job_duration_seconds_bucket/),
      expect.stringMatching(/^histogram_quantile\(0\.95, sum by \(le, model\) \(rate\(longhaul_job_duration_seconds_bucket/),
    ]);
  });
});

describe('deploy/prometheus/longhaul-alerts.yml', () => {
  it('covers stuck jobs, webhook silence, callback failures, queue growth and processes down', () => {
    const names = alertRules().map((r) => r.alert);
    for (const name of [
      'LonghaulJobsNotFinishing',
      'LonghaulJobsStuck',
      'LonghaulJobsExpiring',
      'LonghaulOpenAIWebhooksSilent',
      'LonghaulCallbackFailureRate',
      'LonghaulQueueGrowing',
      'LonghaulWorkerDown',
      'LonghaulNoWorkers',
      'LonghaulApiDown',
    ]) {
      expect(names).toContain(name);
    }
    expect(new Set(names).size).toBe(names.length);
  });

  it('gives every rule a for, a severity, a summary, a description and a runbook hint', () => {
    for (const group of alerts.groups) {
      expect(group.name).toMatch(/^longhaul-/);
      for (const rule of group.rules) {
        expect(Object.keys(rule).sort(), rule.alert).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
        expect(rule.alert).toMatch(/^Longhaul[A-Z]\w+$/);
        expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
        expect(['critical', 'warning', 'info'], rule.alert).toContain(rule.labels.severity);
        for (const annotation of ['summary', 'description', 'runbook']) expect(rule.annotations[annotation], `${rule.alert} ${annotation}`).toMatch(/\S/);
      }
    }
  });
});

describe('deploy/prometheus/prometheus.yml', () => {
  it('scrapes the API and worker metrics listeners under the job names the rules use and loads the rules', () => {
    expect(prometheusConfig.rule_files).toEqual(['longhaul-alerts.yml']);
    const jobs = new Map<string, any>(prometheusConfig.scrape_configs.map((c: any) => [c.job_name, c]));
    expect([...jobs.keys()].sort()).toEqual(JOB_NAMES);
    // The metrics listeners' default ports (apps/api/src/env.ts API_METRICS_PORT, apps/worker/src/env.ts METRICS_PORT).
    expect(jobs.get('longhaul-api').static_configs[0].targets).toEqual(['api:9465']);
    expect(jobs.get('longhaul-worker').dns_sd_configs[0]).toMatchObject({ names: ['worker'], port: 9464 });
    for (const { where, expr } of allExprs()) {
      for (const m of expr.matchAll(/\bjob=~?"([^"]+)"/g)) for (const job of m[1]!.split('|')) expect(JOB_NAMES, where).toContain(job);
    }
  });
});

describe('every PromQL expression in deploy/', () => {
  it('parses', () => {
    for (const { where, expr } of allExprs()) expect(promqlUsage(expr).errors, `${where}: ${expr}`).toEqual([]);
  });

  it('names only metrics and labels that the running API and workers export', () => {
    // The stack's run produced samples of the families whose labels are checked below.
    for (const name of ['longhaul_jobs_finished_total', 'longhaul_callback_attempts_total', 'longhaul_openai_webhooks_total', 'longhaul_webhook_health', 'longhaul_queue_jobs']) {
      expect(exported.get(name)?.size, name).toBeGreaterThan(0);
    }
    const used = new Set<string>();
    for (const { where, expr } of allExprs()) {
      const usage = promqlUsage(expr);
      const known = new Set(TARGET_LABELS);
      for (const metric of usage.metrics) {
        used.add(metric);
        expect(SYNTHETIC[metric] ?? exported.get(metric), `${where}: ${metric} is not exported by Longhaul`).toBeDefined();
        // Labels from this run's samples, or from the scratch registry for a family it left empty.
        const seen = SYNTHETIC[metric] ?? exported.get(metric)!;
        const labels = seen.size > 0 ? seen : (everyLabel.get(metric) ?? seen);
        for (const label of labels) known.add(label);
        for (const label of usage.matchers.get(metric) ?? []) {
          if (!TARGET_LABELS.has(label)) expect([...labels], `${where}: ${metric} has no label ${label}`).toContain(label);
        }
      }
      for (const label of usage.grouping) expect([...known], `${where}: no metric of it has the label ${label}`).toContain(label);
    }
    // The dashboard and the rules between them use the metrics the issue asks about.
    for (const name of [
      'longhaul_jobs_finished_total',
      'longhaul_job_duration_seconds_bucket',
      'longhaul_cost_usd_total',
      'longhaul_openai_webhooks_total',
      'longhaul_polls_total',
      'longhaul_queue_jobs',
      'longhaul_callback_attempts_total',
      'longhaul_callback_delivery_latency_seconds_bucket',
      'longhaul_provider_rate_limited_total',
      'up',
    ]) {
      expect([...used]).toContain(name);
    }
  });
});
