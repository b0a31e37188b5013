/**
 * The worker's side of per-tenant admission: the fair queue (packages/queue/src/fair-queue.ts)
 * with this deployment's window and order, and each tenant's token limit (its own `tpm_limit`,
 * else the deployment default), read from Postgres and remembered for a short while.
 */
import type { Job } from '@longhaul/db';
import { getTenantLimits } from '@longhaul/db';
import { createFairQueue, type FairQueue } from '@longhaul/queue';
import type { WorkerDeps } from './deps.ts';

/** How long a tenant's limit is remembered; a changed limit applies to jobs pushed after this. */
const LIMIT_CACHE_MS = 30_000;

export interface Admission {
  fairQueue: FairQueue;
  /** Push a pending job into the fair queue; false when it is already there (or being submitted). */
  admit(job: Pick<Job, 'id' | 'tenantId' | 'estimatedInputTokens'>): Promise<boolean>;
}

export function createAdmission(deps: Pick<WorkerDeps, 'db' | 'queues' | 'config'>): Admission {
  const settings = deps.config.admission ?? {};
  const fairQueue = createFairQueue(deps.queues.connection, { prefix: deps.queues.prefix, windowMs: settings.windowMs, order: settings.order });
  const limits = new Map<string, { limit: number; until: number }>();

  async function tokenLimit(tenantId: string): Promise<number> {
    const hit = limits.get(tenantId);
    if (hit && hit.until > Date.now()) return hit.limit;
    const row = await getTenantLimits(deps.db.db, tenantId);
    const limit = row?.tpmLimit ?? settings.defaultTokenLimit ?? 0;
    if (limits.size > 10_000) limits.clear();
    limits.set(tenantId, { limit, until: Date.now() + LIMIT_CACHE_MS });
    return limit;
  }

  return {
    fairQueue,
    async admit(job) {
      return fairQueue.push({ jobId: job.id, tenantId: job.tenantId, tokens: job.estimatedInputTokens ?? 0, tokenLimit: await tokenLimit(job.tenantId) });
    },
  };
}
