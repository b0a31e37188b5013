/**
 * Fallbacks and validation (issue 16): what a job does when an attempt fails in a way another
 * attempt may fix, and what makes an attempt's output acceptable. Pure.
 *
 * Design note: a job's attempts are responses of its own, one after another, like a tool-call
 * loop's turns: attempt 1 runs the job's own request; when it ends with a retryable failure
 * (`context_length_exceeded`, a provider error after the retry window, `incomplete` for
 * `max_output_tokens`, a refusal) or fails its `validate`, the job goes back to `pending` with
 * attempt n + 1, whose request is the job's with fallback n's changes applied. The job ends with
 * the first attempt that passes, or the last attempt's outcome. Each attempt is recorded on the
 * job (`attempts`), and usage and cost add up over all of them.
 */

/** One fallback: what the next attempt changes in the job's request. */
export interface Fallback {
  model?: string;
  reasoning?: Record<string, unknown>;
  max_output_tokens?: number;
  instructions?: string;
  /** `truncate_half`: keep the first half of the input's text (context too long). */
  input?: 'truncate_half';
}

/** What an attempt's output must satisfy; a failure is treated as a retryable failure. */
export interface Validation {
  min_output_chars?: number;
  /** The output text must parse as JSON and validate against this schema. */
  json_schema?: Record<string, unknown>;
  /** Strings the output text must contain, all of them. */
  must_include?: string[];
}

/** One attempt, as the job shows it. */
export interface Attempt {
  attempt: number;
  model: string;
  response_id: string | null;
  status: string;
  error: { code: string; message: string } | null;
  usage: Record<string, unknown> | null;
}
