/**
 * Every mutating route of bull-board (the version installed, read from its own route table) has
 * a name in the admin audit log: an upgrade that adds one fails here instead of being logged as
 * `admin.other`.
 */
import { appRoutes } from '@bull-board/api/dist/routes.js';
import { describe, expect, test } from 'vitest';
import { ADMIN_ACTION_NAMES, describeAdminAction } from '../src/admin/audit.ts';

const mutating = appRoutes.api.flatMap((r) =>
  [r.method]
    .flat()
    .filter((m) => m !== 'get')
    .flatMap((m) => [r.route].flat().map((route) => ({ method: m.toUpperCase(), route }))),
);

describe('describeAdminAction', () => {
  test.each(mutating.filter((r) => !r.route.startsWith('/api/metrics/')))('$method $route has an action of its own', ({ method, route }) => {
    const path = `/queues${route.replace(':queueName', 'submit').replace(':jobId', 'submit%3Ajob_1').replace(':queueStatus', 'failed').replace(':schedulerId', 'nightly')}`;
    const { action, target } = describeAdminAction(method, path);
    expect(action).not.toBe('admin.other');
    expect(ADMIN_ACTION_NAMES).toContain(action);
    if (route.includes(':queueName')) expect(target).toMatch(/^submit(\/(submit:job_1|nightly))?$/);
  });

  test('names a job cancel and anything else by its path', () => {
    expect(describeAdminAction('POST', '/jobs/job_abc/cancel')).toEqual({ action: 'job.cancel', target: 'job_abc', details: {} });
    expect(describeAdminAction('PUT', '/queues/api/queues/submit/retry/completed')).toEqual({ action: 'queue.retry', target: 'submit', details: { status: 'completed' } });
    expect(describeAdminAction('DELETE', '/jobs/job_abc')).toEqual({ action: 'admin.other', target: '/jobs/job_abc', details: { method: 'DELETE' } });
  });
});
