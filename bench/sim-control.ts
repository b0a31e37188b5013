/** The simulator's control endpoints (`/sim/config`, `/sim/stats`) as the benchmark uses them. */
import { randomBytes } from 'node:crypto';

/** The parts of `GET /sim/stats` the scenarios read. */
export interface SimStatsView {
  creates: number;
  retrieves: number;
  cancels?: number;
  by_response: Record<string, { retrieves: number; cancels: number }>;
  creates_by_job: Record<string, number>;
  /** By response id: the instant it became terminal (ms since the epoch, simulator clock). */
  terminal_at_ms?: Record<string, number>;
  webhooks: { sent: number; delivered: number; failed_attempts: number };
}

export async function simStats(simUrl: string): Promise<SimStatsView> {
  const res = await fetch(`${simUrl}/sim/stats`);
  if (!res.ok) throw new Error(`GET /sim/stats answered ${res.status}`);
  return (await res.json()) as SimStatsView;
}

export async function patchSimConfig(simUrl: string, patch: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${simUrl}/sim/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
  if (!res.ok) throw new Error(`POST /sim/config answered ${res.status}: ${await res.text()}`);
}

/** A Standard Webhooks signing secret, shared by the simulator (signs) and the API (verifies). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Provider calls (creates + retrieves) the simulator counted for a job and its response. */
export function providerCalls(stats: SimStatsView, jobId: string, responseId: string | null): number {
  return (stats.creates_by_job[jobId] ?? 0) + (responseId ? (stats.by_response[responseId]?.retrieves ?? 0) : 0);
}

/** When the provider finished a response (precise, from the simulator), or undefined. */
export function providerTerminalMs(stats: SimStatsView, responseId: string | null): number | undefined {
  if (!responseId) return undefined;
  if (!stats.terminal_at_ms) throw new Error('GET /sim/stats has no terminal_at_ms: this simulator predates the field the detection scenario needs');
  return stats.terminal_at_ms[responseId];
}

/** Every provider call the simulator answered: creates, retrieves and cancels. */
export function totalCalls(stats: SimStatsView): number {
  return stats.creates + stats.retrieves + (stats.cancels ?? 0);
}
