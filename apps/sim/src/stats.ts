/** Counters exposed by `GET /sim/stats` so tests can assert how a client used the API. */
export interface WebhookStats {
  /** HTTP POST attempts made, including retries and duplicates. */
  sent: number;
  /** Attempts answered 2xx. */
  delivered: number;
  /** Attempts answered non-2xx or failing at the network level. */
  failed_attempts: number;
  /** Deliveries never sent because of `webhook_drop_rate`. */
  dropped: number;
  /** Extra sends caused by `webhook_duplicate_rate`. */
  duplicated: number;
  /** Attempts signed with a wrong secret because of `webhook_bad_signature_rate`. */
  bad_signature: number;
  /** Deliveries abandoned after the retry window (72 h × time_scale). */
  exhausted: number;
}

export interface StreamStats {
  /** SSE streams served: `POST /v1/responses` with stream=true plus every resume. */
  opened: number;
  /** Streams served by `GET /v1/responses/{id}?stream=true` (also counted in `opened`, not in `retrieves`). */
  resumed: number;
  /** Streams the server cut mid-way (`stream_cut_rate`, `stream_cut_after_events`). */
  cut: number;
  /** Resumes refused because the response is older than `stream_resume_window_ms`. */
  expired: number;
}

/** One API key's requests (api-keys.ts), under its masked form. */
export interface KeyStats {
  requests: number;
  creates: number;
  retrieves: number;
  cancels: number;
  /** Answered 401: unknown or revoked. */
  rejected: number;
  /** Answered 404 because the object belongs to another project. */
  other_project: number;
}

/** Batch API calls (`/v1/batches`) and what the batches did. */
export interface BatchStats {
  created: number;
  retrieves: number;
  lists: number;
  cancels: number;
  /** Lines executed with a 2xx answer (in output files). */
  lines_completed: number;
  /** Lines executed with an error answer (in error files). */
  lines_failed: number;
  /** Batches by terminal status. */
  completed: number;
  failed: number;
  expired: number;
  cancelled: number;
}

export interface SimStats {
  creates: number;
  retrieves: number;
  cancels: number;
  rate_limited: number;
  /** `service_tier: "flex"` creates answered 429 Resource Unavailable (`flex_unavailable_rate`). */
  flex_unavailable: number;
  errors: number;
  by_response: Record<string, { retrieves: number; cancels: number }>;
  creates_by_job: Record<string, number>;
  /** By response id: when a background response reached its terminal state (ms since the epoch, simulator clock). */
  terminal_at_ms: Record<string, number>;
  webhooks: WebhookStats;
  streams: StreamStats;
  /** Requests refused because their body does not satisfy OpenAI's spec. */
  invalid_requests: number;
  files: { created: number; deleted: number };
  conversations: { created: number; deleted: number };
  batches: BatchStats;
  /** By API key, masked (api-keys.ts): its requests, and those answered 401 or refused for another project. */
  by_key: Record<string, KeyStats>;
}

export function emptyStats(): SimStats {
  return {
    creates: 0,
    retrieves: 0,
    cancels: 0,
    rate_limited: 0,
    flex_unavailable: 0,
    errors: 0,
    by_response: {},
    creates_by_job: {},
    terminal_at_ms: {},
    webhooks: { sent: 0, delivered: 0, failed_attempts: 0, dropped: 0, duplicated: 0, bad_signature: 0, exhausted: 0 },
    streams: { opened: 0, resumed: 0, cut: 0, expired: 0 },
    invalid_requests: 0,
    files: { created: 0, deleted: 0 },
    conversations: { created: 0, deleted: 0 },
    batches: { created: 0, retrieves: 0, lists: 0, cancels: 0, lines_completed: 0, lines_failed: 0, completed: 0, failed: 0, expired: 0, cancelled: 0 },
    by_key: {},
  };
}

export function countCreate(stats: SimStats, responseId: string, jobId: string | undefined): void {
  stats.creates++;
  stats.by_response[responseId] = { retrieves: 0, cancels: 0 };
  if (jobId !== undefined) stats.creates_by_job[jobId] = (stats.creates_by_job[jobId] ?? 0) + 1;
}

export function countRetrieve(stats: SimStats, responseId: string): void {
  stats.retrieves++;
  responseStats(stats, responseId).retrieves++;
}

export function countCancel(stats: SimStats, responseId: string): void {
  stats.cancels++;
  responseStats(stats, responseId).cancels++;
}

function responseStats(stats: SimStats, responseId: string): { retrieves: number; cancels: number } {
  let entry = stats.by_response[responseId];
  if (entry === undefined) {
    entry = { retrieves: 0, cancels: 0 };
    stats.by_response[responseId] = entry;
  }
  return entry;
}
