/**
 * `@longhaul/client`: the typed client (createClient), its errors, and the API's types generated from
 * the OpenAPI document. Everything here is the package's public API (`@public`: used by other projects,
 * not only inside this repository).
 */
/** @public */
export { createClient, type ClientOptions, type CreateJobOptions, type LonghaulClient } from './client.ts';
/** @public */
export type { HeadersLike } from './callbacks.ts';
/** @public */
export type { StreamEvent, StreamOptions } from './stream.ts';
/** @public */
export type { WaitOptions } from './wait.ts';
/** @public */
export {
  AuthenticationError,
  BadRequestError,
  CallbackVerificationError,
  ConflictError,
  ConnectionError,
  InternalServerError,
  LonghaulError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  WaitTimeoutError,
} from './errors.ts';
/** @public */
export {
  TERMINAL_STATUSES,
  type CallbackEvent,
  type Job,
  type JobCreateParams,
  type JobEvent,
  type JobEventList,
  type JobList,
  type JobListParams,
  type JobStatus,
  type Prompt,
  type PromptCreateParams,
  type PromptList,
  type PromptListParams,
  type PromptVersionList,
  type PromptVersionListParams,
  type UsageParams,
  type UsageReport,
  type UsageRow,
  type UsageTotals,
  type components,
  type operations,
  type paths,
  type webhooks,
} from './api-types.ts';
