/** `longhaul usage`: GET /v1/usage as a table, one row per group (model, day or prompt version) and a total. */
import type { UsageReport, UsageRow, UsageTotals } from '../api-types.ts';
import { formatCost } from './progress.ts';

function groupOf(report: UsageReport, row: UsageRow): string {
  if (report.group_by === 'day') return String(row.day ?? '');
  if (report.group_by === 'prompt_version') return row.prompt_id ? `${row.prompt_id} v${row.prompt_version} ${row.model ?? ''}` : `(no prompt) ${row.model ?? ''}`;
  return String(row.model ?? '');
}

const cells = (group: string, r: UsageTotals) => [
  group,
  String(r.jobs),
  String(r.input_tokens),
  String(r.cached_tokens),
  String(r.output_tokens),
  String(r.reasoning_tokens),
  formatCost(r.cost_usd),
];

export function usageTable(report: UsageReport): string {
  const header = [report.group_by === 'prompt_version' ? 'prompt' : report.group_by, 'jobs', 'input', 'cached', 'output', 'reasoning', 'cost'];
  const rows = [header, ...report.data.map((row) => cells(groupOf(report, row), row)), cells('total', report.total)];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  // The group left-aligned, the numbers right-aligned.
  const format = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [format(header), rule, ...rows.slice(1, -1).map(format), rule, format(rows.at(-1)!)].join('\n');
}
