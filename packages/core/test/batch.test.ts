import { describe, expect, it } from 'vitest';
import {
  type BatchStatus,
  batchInputLine,
  batchTransition,
  estimateJobCostUsd,
  DEFAULT_MODEL_PRICES,
  flushDecision,
  nextWorkFor,
  parseBatchLine,
  priceTier,
  transition,
  unansweredError,
} from '../src/index.ts';

const at = (status: BatchStatus) => ({ status });

describe('batchTransition', () => {
  it('goes building → uploaded → the provider’s statuses, never back', () => {
    expect(batchTransition(at('building'), { type: 'uploaded', fileId: 'file_1' })).toEqual({ ok: true, status: 'uploaded', changed: true });
    expect(batchTransition(at('uploaded'), { type: 'created', providerStatus: 'validating' })).toEqual({ ok: true, status: 'validating', changed: true });
    expect(batchTransition(at('validating'), { type: 'observed', providerStatus: 'in_progress' })).toMatchObject({ status: 'in_progress', changed: true });
    // A late report of an earlier status moves nothing.
    expect(batchTransition(at('finalizing'), { type: 'observed', providerStatus: 'in_progress' })).toMatchObject({ status: 'finalizing', changed: false });
    expect(batchTransition(at('finalizing'), { type: 'observed', providerStatus: 'completed' })).toMatchObject({ status: 'completed', changed: true });
  });

  it('takes every end the provider reports, and nothing after it', () => {
    for (const end of ['completed', 'failed', 'expired', 'cancelled'] as const) {
      expect(batchTransition(at('in_progress'), { type: 'observed', providerStatus: end })).toMatchObject({ status: end, changed: true });
      // A duplicate webhook or a late poll after the end changes nothing.
      expect(batchTransition(at(end), { type: 'observed', providerStatus: 'in_progress' })).toMatchObject({ ok: true, status: end, changed: false });
      expect(batchTransition(at(end), { type: 'uploaded', fileId: 'f' })).toMatchObject({ ok: false });
    }
  });

  it('refuses what cannot happen from where the batch is', () => {
    expect(batchTransition(at('building'), { type: 'created', providerStatus: 'validating' })).toMatchObject({ ok: false });
    expect(batchTransition(at('building'), { type: 'observed', providerStatus: 'completed' })).toMatchObject({ ok: false });
    expect(batchTransition(at('in_progress'), { type: 'submit_failed', error: { code: 'x', message: 'x' } })).toMatchObject({ ok: false });
    // A crash after the create: the batch found again by its metadata is created already.
    expect(batchTransition(at('in_progress'), { type: 'created', providerStatus: 'validating' })).toMatchObject({ ok: true, status: 'in_progress', changed: false });
  });

  it('cancels at the provider only what the provider has; once cancelling, only the end counts', () => {
    expect(batchTransition(at('building'), { type: 'cancel_requested' })).toMatchObject({ status: 'cancelled' });
    expect(batchTransition(at('uploaded'), { type: 'cancel_requested' })).toMatchObject({ status: 'cancelled' });
    expect(batchTransition(at('in_progress'), { type: 'cancel_requested' })).toMatchObject({ status: 'cancelling' });
    expect(batchTransition(at('cancelling'), { type: 'observed', providerStatus: 'in_progress' })).toMatchObject({ status: 'cancelling', changed: false });
    expect(batchTransition(at('cancelling'), { type: 'observed', providerStatus: 'cancelled' })).toMatchObject({ status: 'cancelled', changed: true });
    expect(batchTransition(at('building'), { type: 'submit_failed', error: { code: 'x', message: 'x' } })).toMatchObject({ status: 'failed' });
  });
});

describe('flushDecision', () => {
  const limits = { maxJobs: 100, maxBytes: 1_000, maxWaitMs: 60_000 };
  it('flushes a full batch, a batch at its byte limit, or one whose oldest job waited long enough', () => {
    expect(flushDecision({ count: 0, bytes: 0, oldestAgeMs: 1e9 }, limits)).toEqual({ flush: false, reason: null });
    expect(flushDecision({ count: 100, bytes: 10, oldestAgeMs: 0 }, limits)).toEqual({ flush: true, reason: 'size' });
    expect(flushDecision({ count: 3, bytes: 1_000, oldestAgeMs: 0 }, limits)).toEqual({ flush: true, reason: 'bytes' });
    expect(flushDecision({ count: 3, bytes: 10, oldestAgeMs: 60_000 }, limits)).toEqual({ flush: true, reason: 'age' });
    expect(flushDecision({ count: 3, bytes: 10, oldestAgeMs: 59_999 }, limits)).toEqual({ flush: false, reason: null });
  });
});

describe('batch lines', () => {
  it('writes a job as a /v1/responses request line, without background or stream', () => {
    const line = JSON.parse(batchInputLine('job_1', { model: 'o3', input: 'hi', background: true, stream: false }));
    expect(line).toEqual({ custom_id: 'job_1', method: 'POST', url: '/v1/responses', body: { model: 'o3', input: 'hi' } });
  });

  it('reads a 2xx line as the job’s response, anything else as its error', () => {
    const ok = parseBatchLine(
      JSON.stringify({ id: 'r1', custom_id: 'job_1', response: { status_code: 200, request_id: 'req', body: { id: 'resp_1', status: 'completed' } }, error: null }),
    );
    expect(ok).toEqual({ jobId: 'job_1', response: { id: 'resp_1', status: 'completed' } });
    const failed = parseBatchLine(JSON.stringify({ custom_id: 'job_2', response: { status_code: 500, body: { error: { code: 'server_error', message: 'boom' } } }, error: null }));
    expect(failed).toEqual({ jobId: 'job_2', error: { code: 'server_error', message: 'boom' } });
    const expired = parseBatchLine(JSON.stringify({ custom_id: 'job_3', response: null, error: { code: 'batch_expired', message: 'expired' } }));
    expect(expired).toEqual({ jobId: 'job_3', error: { code: 'batch_expired', message: 'expired' } });
    expect(parseBatchLine(JSON.stringify({ custom_id: 'job_4', response: { status_code: 400, body: {} } }))).toMatchObject({ error: { code: 'provider_400' } });
    expect(parseBatchLine('not json')).toBeNull();
    expect(parseBatchLine('{"no":"custom id"}')).toBeNull();
  });

  it('says why a job got no line', () => {
    expect(unansweredError('expired', null).code).toBe('batch_expired');
    expect(unansweredError('cancelled', null).code).toBe('batch_cancelled');
    expect(unansweredError('failed', 'line 2: invalid_json_line')).toEqual({ code: 'batch_failed', message: 'The batch failed: line 2: invalid_json_line' });
  });
});

describe('a batch job’s state', () => {
  it('waits pending in its batch and ends with its line, once', () => {
    expect(transition({ status: 'pending' }, { type: 'batch_line', responseStatus: 'completed' })).toEqual({ ok: true, status: 'completed', changed: true });
    expect(transition({ status: 'pending' }, { type: 'batch_line', responseStatus: 'failed' })).toMatchObject({ status: 'failed' });
    // A line read again after a crash, or a line of a job cancelled meanwhile: refused.
    expect(transition({ status: 'completed' }, { type: 'batch_line', responseStatus: 'completed' })).toMatchObject({ ok: false, error: { code: 'job_terminal' } });
    expect(transition({ status: 'cancelled' }, { type: 'batch_line', responseStatus: 'completed' })).toMatchObject({ ok: false });
    expect(transition({ status: 'pending' }, { type: 'batch_line', responseStatus: 'in_progress' })).toMatchObject({ ok: false });
  });
});

describe('a batch job’s work', () => {
  it('is never submitted on its own: its batch sends it', () => {
    for (const change of [{ type: 'created' }, { type: 'overdue' }, { type: 'cache_released' }, { type: 'batch_line' }] as const) {
      expect(nextWorkFor({ status: 'pending', streamed: false, batched: true }, change)).toEqual([]);
    }
    // The same job without `batched` is.
    expect(nextWorkFor({ status: 'pending', streamed: false }, { type: 'created' })).toEqual([{ kind: 'submit' }]);
  });
});

describe('tier prices', () => {
  const usage = {
    input_tokens: 1_000_000,
    output_tokens: 1_000_000,
    total_tokens: 2_000_000,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens_details: { reasoning_tokens: 0 },
  };
  it('prices a batch line and a flex response at half the standard price', () => {
    expect(priceTier('batch', null)).toBe('batch');
    expect(priceTier('background', 'flex')).toBe('flex');
    expect(priceTier('background', 'default')).toBe('standard');
    expect(estimateJobCostUsd(DEFAULT_MODEL_PRICES, 'o3', usage)).toBe(10);
    expect(estimateJobCostUsd(DEFAULT_MODEL_PRICES, 'o3', usage, 'batch')).toBe(5);
    expect(estimateJobCostUsd(DEFAULT_MODEL_PRICES, 'o3', usage, 'flex')).toBe(5);
  });
});
