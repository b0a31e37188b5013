/**
 * A lean keep-alive HTTP client for `POST /v1/jobs`. node:http with a keep-alive Agent costs the
 * benchmark process less CPU per request than fetch, which matters when the client shares two
 * cores with the simulator, the API and the worker.
 */
import { Agent, request } from 'node:http';

export interface SubmitResult {
  status: number;
  /** The job id of a 202 answer. */
  jobId?: string;
  /** The error body of any other answer (truncated). */
  error?: string;
}

export interface JobsClient {
  submit(body: string): Promise<SubmitResult>;
  close(): void;
}

/** `maxSockets`: connections kept to the API (Infinity for open-loop load, so nothing queues in the client). */
export function createJobsClient(apiUrl: string, apiKey: string, maxSockets: number): JobsClient {
  const url = new URL('/v1/jobs', apiUrl);
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: Number.isFinite(maxSockets) ? maxSockets : 256 });
  const submit = (body: string) =>
    new Promise<SubmitResult>((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            if (status !== 202) return resolve({ status, error: text.slice(0, 300) });
            try {
              resolve({ status, jobId: (JSON.parse(text) as { id: string }).id });
            } catch {
              resolve({ status, error: `unparseable body: ${text.slice(0, 300)}` });
            }
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  return { submit, close: () => agent.destroy() };
}
