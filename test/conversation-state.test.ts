/**
 * Conversation state through the whole pipeline (API -> worker -> simulator -> reconcile):
 * previous_job_id, previous_response_id, conversations, threads and manual history.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenant } from '@longhaul/db';
import { type Stack, isTerminalJob, jobBody, startStack } from './harness.ts';

let stack: Stack;
let otherTenant: { authorization: string };
beforeAll(async () => {
  stack = await startStack();
  const other = await createTenant(stack.db.db, 'other tenant');
  otherTenant = { authorization: `Bearer ${other.apiKey}` };
});
afterAll(async () => {
  await stack?.stop();
});

async function submit(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await stack.api('POST', '/v1/jobs', body, headers);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body;
}

async function run(body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const job = await submit(body, headers);
  return stack.waitForJob(job.id, isTerminalJob);
}

/** What the simulator received for a response (the create body, as sent by the worker). */
async function sentFor(responseId: string) {
  return stack.simApi('GET', `/sim/requests/${responseId}`);
}

describe('previous_job_id', () => {
  it('continues a finished job: its response is the previous_response_id, the context grows, the thread lists the chain', async () => {
    const first = await run(jobBody({ input: 'Tell me a joke about otters.', reasoning: { effort: 'low' } }, 50));
    expect(first.status).toBe('completed');
    expect(first.thread_id).toBe(first.id);
    expect(first.previous_job_id).toBeNull();

    const second = await run(jobBody({ previous_job_id: first.id, input: 'Explain why it is funny.', reasoning: { effort: 'low' } }, 50));
    expect(second.status).toBe('completed');
    expect(second).toMatchObject({ previous_job_id: first.id, thread_id: first.id });
    expect((await sentFor(second.response_id)).previous_response_id).toBe(first.response_id);

    // The same question without the earlier turn costs fewer input tokens: the context was used.
    const alone = await run(jobBody({ input: 'Explain why it is funny.', reasoning: { effort: 'low' } }, 50));
    expect(second.usage.input_tokens).toBeGreaterThan(alone.usage.input_tokens + first.usage.input_tokens);
    // The estimate charged to the tenant's token budget includes the earlier turn.
    expect(second.estimated_input_tokens).toBeGreaterThan(alone.estimated_input_tokens + first.usage.input_tokens);
    expect(Math.abs(second.estimated_input_tokens - second.usage.input_tokens)).toBeLessThanOrEqual(second.usage.input_tokens * 0.05);

    const third = await run(jobBody({ previous_job_id: second.id, input: 'Now a shorter one.', reasoning: { effort: 'low' } }, 50));
    expect(third).toMatchObject({ status: 'completed', previous_job_id: second.id, thread_id: first.id });
    expect(third.usage.input_tokens).toBeGreaterThan(second.usage.input_tokens);

    for (const member of [first.id, second.id, third.id]) {
      const thread = await stack.api('GET', `/v1/jobs?thread=${member}`);
      expect(thread.status).toBe(200);
      expect(thread.body.data.map((j: any) => j.id)).toEqual([first.id, second.id, third.id]);
    }
    const page = await stack.api('GET', `/v1/jobs?thread=${first.id}&limit=2`);
    expect(page.body).toMatchObject({ has_more: true, data: [{ id: first.id }, { id: second.id }] });
    const rest = await stack.api('GET', `/v1/jobs?thread=${first.id}&limit=2&after=${second.id}`);
    expect(rest.body.data.map((j: any) => j.id)).toEqual([third.id]);
    expect((await stack.api('GET', `/v1/jobs?thread=${first.id}`, undefined, otherTenant)).status).toBe(404);
  });

  it("refuses another tenant's job (404), an unfinished job and a job without a response (409)", async () => {
    const mine = await run(jobBody({ input: 'hello' }, 50));
    const stranger = await stack.api('POST', '/v1/jobs', jobBody({ previous_job_id: mine.id }), otherTenant);
    expect(stranger.status).toBe(404);
    expect(stranger.body.error).toMatchObject({ code: 'previous_job_not_found', param: 'previous_job_id' });

    const running = await submit(jobBody({ input: 'a long one' }, 600_000));
    const early = await stack.api('POST', '/v1/jobs', jobBody({ previous_job_id: running.id }));
    expect(early.status).toBe(409);
    expect(early.body.error.code).toBe('previous_job_not_finished');
    await stack.api('POST', `/v1/jobs/${running.id}/cancel`);

    // A job the provider refused never had a response: nothing to continue.
    const refused = await run(jobBody({ previous_response_id: 'resp_does_not_exist_anywhere' }, 50));
    expect(refused.status).toBe('failed');
    expect(refused.response_id).toBeNull();
    const none = await stack.api('POST', '/v1/jobs', jobBody({ previous_job_id: refused.id }));
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('previous_job_has_no_response');

    const unknown = await stack.api('POST', '/v1/jobs', jobBody({ previous_job_id: 'job_000000000000000000000000' }));
    expect(unknown.status).toBe(404);
  });

  it('accepts only one way of continuing', async () => {
    const res = await stack.api('POST', '/v1/jobs', jobBody({ previous_job_id: 'job_000000000000000000000000', previous_response_id: 'resp_x' }));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('conflicting_parameters');
    const both = await stack.api('POST', '/v1/jobs', jobBody({ previous_response_id: 'resp_x', conversation: 'conv_x' }));
    expect(both.status).toBe(400);
  });
});

describe('previous_response_id', () => {
  it("joins the thread of the tenant's own job, and fails a job for an id the provider does not know", async () => {
    const first = await run(jobBody({ input: 'Name three rivers.' }, 50));
    const next = await run(jobBody({ previous_response_id: first.response_id, input: 'And three lakes.' }, 50));
    expect(next).toMatchObject({ status: 'completed', previous_job_id: first.id, thread_id: first.id });

    const unknown = await run(jobBody({ previous_response_id: 'resp_unknown0000000000000000' }, 50));
    expect(unknown.status).toBe('failed');
    expect(unknown.error.code).toBe('previous_response_not_found');
  });

  it("treats another tenant's response as unknown", async () => {
    const mine = await run(jobBody({ input: 'secret context' }, 50));
    const res = await stack.api('POST', '/v1/jobs', jobBody({ previous_response_id: mine.response_id }), otherTenant);
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ code: 'previous_response_not_found', param: 'previous_response_id' });
  });
});

describe('conversations', () => {
  it('creates a conversation at the provider; jobs in it see the earlier turns; only its tenant may use it', async () => {
    const created = await stack.api('POST', '/v1/conversations', { metadata: { topic: 'rivers' } });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    expect(created.body).toMatchObject({ object: 'conversation', metadata: { topic: 'rivers' } });
    const id = created.body.id as string;
    expect(id).toMatch(/^conv_/);
    expect((await stack.api('GET', `/v1/conversations/${id}`)).body.id).toBe(id);

    const first = await run(jobBody({ conversation: id, input: 'Name three rivers.', reasoning: { effort: 'low' } }, 50));
    expect(first).toMatchObject({ status: 'completed', conversation: id });
    const second = await run(jobBody({ conversation: { id }, input: 'Name three rivers.', reasoning: { effort: 'low' } }, 50));
    expect(second.status).toBe('completed');
    expect(second.usage.input_tokens).toBeGreaterThan(first.usage.input_tokens);
    expect((await sentFor(second.response_id)).conversation).toEqual({ id });

    // The conversation holds both turns: each job's input and its answer, oldest first.
    const items = await stack.api('GET', `/v1/conversations/${id}/items?order=asc&limit=100`);
    expect(items.status, JSON.stringify(items.body)).toBe(200);
    const messages = items.body.data.filter((item: any) => item.type === 'message');
    expect(messages.map((m: any) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(JSON.stringify(messages[3])).toContain(second.output_text.slice(0, 40));
    expect((await stack.api('GET', `/v1/conversations/${id}/items?order=sideways`)).status).toBe(400);
    expect((await stack.api('GET', `/v1/conversations/${id}/items`, undefined, otherTenant)).status).toBe(404);

    const stranger = await stack.api('POST', '/v1/jobs', jobBody({ conversation: id }), otherTenant);
    expect(stranger.status).toBe(404);
    expect(stranger.body.error).toMatchObject({ code: 'conversation_not_found', param: 'conversation' });
    expect((await stack.api('GET', `/v1/conversations/${id}`, undefined, otherTenant)).status).toBe(404);

    const deleted = await stack.api('DELETE', `/v1/conversations/${id}`);
    expect(deleted.body).toMatchObject({ id, deleted: true });
    expect((await stack.api('GET', `/v1/conversations/${id}`)).status).toBe(404);
    expect((await stack.api('POST', '/v1/jobs', jobBody({ conversation: id }))).status).toBe(404);
  });

  it('refuses a malformed conversation body with a 400', async () => {
    const res = await stack.api('POST', '/v1/conversations', { metadata: { k: 5 } });
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe('metadata.k');
  });
});

describe('manual history', () => {
  it("runs a job whose input carries the earlier assistant turns, in the guide's forms", async () => {
    const first = await run(jobBody({ input: [{ role: 'user', content: 'Tell me a joke.' }], reasoning: { effort: 'low' } }, 50));
    const message = first.output.find((item: any) => item.type === 'message');
    // The guide's JavaScript example: the earlier output items, without their ids.
    const { id: _id, ...copied } = message;
    const done = await run(
      jobBody(
        {
          input: [
            { role: 'user', content: 'Tell me a joke.' },
            copied,
            { role: 'user', content: [{ type: 'input_text', text: 'Explain why it is funny.' }] },
            { role: 'assistant', content: 'Because otters.' },
            {
              role: 'assistant',
              content: [
                { type: 'output_text', text: 'Also: ' },
                { type: 'output_text', text: 'rivers.' },
              ],
            },
            { role: 'user', content: 'Another one.' },
          ],
          reasoning: { effort: 'low' },
        },
        50,
      ),
    );
    expect(done.status, JSON.stringify(done.error)).toBe('completed');
    expect(done.thread_id).toBe(done.id);
    const sent = (await sentFor(done.response_id)).input;
    expect(sent).toHaveLength(6);
    expect(sent[1]).toEqual({ role: 'assistant', type: 'message', content: first.output_text });
    expect(sent[4]).toEqual({ role: 'assistant', content: 'Also: rivers.' });
    // The earlier turns are part of the context.
    expect(done.usage.input_tokens).toBeGreaterThan(first.usage.input_tokens + Math.floor(first.output_text.length / 4));
  });
});
