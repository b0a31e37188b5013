/**
 * What a tenant or a visitor can learn from the API that they should not: an IPv4-translated
 * callback URL that reaches loopback, the Location a refused redirect pointed at, and the
 * framework behind the admin UI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';
import { type Receiver, startReceiver } from './receiver.ts';

const ADMIN_TOKEN = 'lh_admin_hardening_0123456789';

let stack: Stack;
let receiver: Receiver;
beforeAll(async () => {
  stack = await startStack({ api: { admin: { token: ADMIN_TOKEN } } });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('callback URLs', () => {
  it.each(['http://[::ffff:0:127.0.0.1]/hook', 'http://[::ffff:0:7f00:1]:8080/', 'http://[64:ff9b::7f00:1]/'])(
    'refuses %s although loopback is allowed (an IPv4-translated or NAT64 spelling is not this host)',
    async (url) => {
      // The stack allows 127.0.0.0/8 and ::1/128 (its receivers listen there), as CALLBACK_ALLOWED_CIDRS does.
      const ep = await stack.api('POST', '/v1/webhook-endpoints', { url });
      expect(ep.status, JSON.stringify(ep.body)).toBe(400);
      expect(ep.body.error).toMatchObject({ code: 'url_not_allowed', param: 'url' });
      const job = await stack.api('POST', '/v1/jobs', jobBody({ callback_url: url }));
      expect(job.status).toBe(400);
      expect(job.body.error.param).toBe('callback_url');
    },
  );

  it('reports a refused redirect by its status, never by where it pointed', async () => {
    const location = 'http://169.254.169.254/latest/meta-data/iam/security-credentials/role?token=s3cr3t';
    receiver.respond = () => ({ status: 302, headers: { location } });
    const { body: job } = await stack.api('POST', '/v1/jobs', jobBody({ callback_url: receiver.url }, 0));
    await stack.waitForJob(job.id, isTerminalJob);
    const listed = await until('a redirected delivery attempt', async () => {
      const r = await stack.api('GET', `/v1/deliveries?job_id=${job.id}`);
      const mine = r.body.data.find((d: { url: string }) => d.url === receiver.url);
      return mine?.attempts >= 1 ? mine : null;
    });
    expect(listed.last_error).toBe('redirect refused (status 302)');
    expect(listed.last_status_code).toBe(302);
    const detail = await stack.api('GET', `/v1/deliveries/${listed.id}`);
    expect(detail.body.attempt_log[0]).toMatchObject({ status_code: 302, error: 'redirect refused (status 302)' });
    expect(JSON.stringify(detail.body)).not.toMatch(/169\.254|meta-data|s3cr3t/);
  });
});

describe('response headers', () => {
  it('never names the framework, on the admin UI (bull-board included) or the API', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    for (const path of ['/admin/queues/', '/admin/queues/api/queues', '/admin/jobs', '/admin/login', '/v1/jobs', '/healthz', '/nowhere']) {
      const res = await fetch(`${stack.apiUrl}${path}`, { headers: path.startsWith('/admin') ? auth : { authorization: `Bearer ${stack.apiKey}` } });
      expect(res.status, path).toBeLessThan(500);
      expect(res.headers.get('x-powered-by'), path).toBeNull();
    }
  });
});
