/**
 * Every operation of /v1, in one table: method, path, tag, the zod schemas the route parses its
 * path ids, query and body with (exported by the route files, so the document cannot drift from
 * the validation), and the schemas of its answers (./schemas.ts). document.ts turns the table into
 * OpenAPI; the contract test checks it against the routes Express has mounted, both ways, so a
 * route added without an entry here fails it.
 */
import { z } from 'zod';
import { jobRequestSchema } from '../job-request.ts';
import { ids } from '../request-input.ts';
import * as apiKeys from '../routes/api-keys.ts';
import * as batches from '../routes/batches.ts';
import * as cache from '../routes/cache.ts';
import * as conversations from '../routes/conversations.ts';
import * as datasets from '../routes/datasets.ts';
import * as evals from '../routes/evals.ts';
import * as files from '../routes/files.ts';
import * as jobs from '../routes/jobs.ts';
import * as pipelines from '../routes/pipelines.ts';
import * as prompts from '../routes/prompts.ts';
import * as responses from '../routes/responses.ts';
import * as usage from '../routes/usage.ts';
import * as webhooks from '../routes/webhook-endpoints.ts';
import * as S from './schemas.ts';

export type Method = 'get' | 'post' | 'patch' | 'delete';

/** One answer: a JSON schema, a Server-Sent Events stream, or no body. */
export type Answer = { description: string; schema?: z.ZodType; sse?: boolean; headers?: Record<string, string> };

export interface Operation {
  method: Method;
  /** OpenAPI style: `/v1/jobs/{id}`. */
  path: string;
  operationId: string;
  tag: string;
  summary: string;
  description?: string;
  /** Path parameters, by name (`id`, `version`). */
  params?: Record<string, z.ZodType>;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** Other request media types of the body: JSONL items (datasets) or a multipart upload (files). */
  bodyAs?: 'jsonl' | 'multipart';
  /** Request headers the route reads. */
  headers?: Record<string, string>;
  /** Success answers by status. */
  ok: Record<number, Answer>;
  /** Error statuses this route answers besides the ones every route may (401, 403, 429, 500, 503). */
  errors?: number[];
}

const version = z
  .string()
  .regex(/^\d{1,9}$/)
  .describe('A version number (1, 2, …)');
const idempotency = { 'Idempotency-Key': 'A retried create with the same key answers the first one (24 h).' };
const sse = (description: string): Answer => ({ description, sse: true });
const json = (schema: z.ZodType, description = 'OK'): Answer => ({ schema, description });
const created = (schema: z.ZodType, description = 'Created'): Answer => ({ schema, description, headers: { Location: 'The new object' } });

const JobList = S.listOf(S.Job, 'JobList', true);

const jobOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/jobs',
    operationId: 'createJob',
    tag: 'Jobs',
    summary: 'Submit a job',
    description:
      "The Responses create parameters a reasoning job needs, plus Longhaul's own fields (`callback_url`, `previous_job_id`, `expected_duration_seconds`, `cache`, `fallbacks`, `validate`, `tool_executor`, `processing`, ...). Answered at once (202), before the provider is called.",
    body: jobRequestSchema,
    headers: idempotency,
    ok: { 202: { schema: S.Job, description: 'Accepted', headers: { Location: 'The job', 'Idempotent-Replayed': '`true` when an Idempotency-Key replayed an earlier create' } } },
    errors: [400, 404, 409, 413, 415, 422],
  },
  {
    method: 'get',
    path: '/v1/jobs',
    operationId: 'listJobs',
    tag: 'Jobs',
    summary: 'List jobs, newest first (or a conversation chain, oldest first)',
    query: jobs.listQuerySchema,
    ok: { 200: json(JobList) },
    errors: [400, 404],
  },
  { method: 'get', path: '/v1/jobs/{id}', operationId: 'getJob', tag: 'Jobs', summary: 'Get a job', params: { id: ids.job }, ok: { 200: json(S.Job) }, errors: [400, 404] },
  {
    method: 'delete',
    path: '/v1/jobs/{id}',
    operationId: 'deleteJob',
    tag: 'Jobs',
    summary: "Erase a finished job's content (its tombstone stays)",
    params: { id: ids.job },
    ok: { 200: json(S.DeletedJob) },
    errors: [400, 404, 409],
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}/events',
    operationId: 'listJobEvents',
    tag: 'Jobs',
    summary: "A job's state changes, oldest first",
    params: { id: ids.job },
    ok: { 200: json(S.listOf(S.JobEvent, 'JobEventList')) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/jobs/{id}/stream',
    operationId: 'streamJob',
    tag: 'Jobs',
    summary: "A job's events as Server-Sent Events",
    description:
      "`id:` is the provider's `sequence_number` (`s.k` for Longhaul's lifecycle events in between), `event:` the event type, `data:` the event JSON. `Last-Event-ID` (or `starting_after`) resumes after that event. A finished job replays and closes; a running one is followed live.",
    params: { id: ids.job },
    query: z.object({ starting_after: z.string().optional().describe('An event id of this stream (or send Last-Event-ID)') }),
    headers: { 'Last-Event-ID': 'Resume after this event' },
    ok: { 200: sse('The event stream'), 204: { description: 'Nothing after the cursor, ever: the job has finished' } },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/jobs/{id}/cancel',
    operationId: 'cancelJob',
    tag: 'Jobs',
    summary: 'Cancel a job (also at the provider)',
    params: { id: ids.job },
    ok: { 200: json(S.Job) },
    errors: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/jobs/{id}/tool_outputs',
    operationId: 'submitToolOutputs',
    tag: 'Jobs',
    summary: "Answer a `requires_action` job's tool calls",
    params: { id: ids.job },
    body: jobs.toolOutputsSchema,
    ok: { 200: json(S.Job) },
    errors: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/jobs/{id}/approvals',
    operationId: 'submitApprovals',
    tag: 'Jobs',
    summary: "Answer a `requires_action` job's MCP approval requests",
    params: { id: ids.job },
    body: jobs.approvalsSchema,
    ok: { 200: json(S.Job) },
    errors: [400, 404, 409],
  },
];

const responseId = { id: ids.response.describe('`resp_…` (a Longhaul response) or a job id') };
const responseOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/responses',
    operationId: 'createResponse',
    tag: 'Responses (OpenAI-compatible)',
    summary: "OpenAI's Responses create, served as a durable job",
    description:
      "The body is OpenAI's `CreateResponse` (validated against OpenAI's own document), plus Longhaul's options as extra fields or `Longhaul-*` headers (`callback_url`, `previous_job_id`, `expected_duration_seconds`, `tool_executor`, `max_turns`). `background: true` answers at once, `stream: true` with OpenAI's event stream, neither when the job has finished.",
    body: z.looseObject({ model: z.string().optional(), input: z.unknown().optional(), background: z.boolean().optional(), stream: z.boolean().optional() }),
    headers: {
      ...idempotency,
      'Longhaul-Callback-Url': 'Signed callbacks when the response ends',
      'Longhaul-Previous-Job-Id': 'Continue an earlier job',
      'Longhaul-Expected-Duration': 'The completion hint, in seconds',
      'Longhaul-Tool-Executor': 'Run the tool-call loop at this URL',
      'Longhaul-Max-Turns': "The loop's most turns",
    },
    ok: { 200: { schema: S.Response, sse: true, description: 'The Response (JSON), or its event stream with `stream: true`', headers: { 'Longhaul-Job-Id': 'The job' } } },
    errors: [400, 404, 409, 413, 422, 502],
  },
  {
    method: 'get',
    path: '/v1/responses/{id}',
    operationId: 'getResponse',
    tag: 'Responses (OpenAI-compatible)',
    summary: 'Retrieve a response (or stream it with `stream=true`)',
    params: responseId,
    query: responses.retrieveQuery,
    ok: { 200: { schema: S.Response, sse: true, description: 'The Response, or its event stream' } },
    errors: [400, 404],
  },
  {
    method: 'delete',
    path: '/v1/responses/{id}',
    operationId: 'deleteResponse',
    tag: 'Responses (OpenAI-compatible)',
    summary: 'Delete a finished response',
    params: responseId,
    ok: { 200: json(S.Deleted) },
    errors: [404, 409],
  },
  {
    method: 'post',
    path: '/v1/responses/{id}/cancel',
    operationId: 'cancelResponse',
    tag: 'Responses (OpenAI-compatible)',
    summary: 'Cancel a response',
    params: responseId,
    ok: { 200: json(S.Response) },
    errors: [404, 409],
  },
  {
    method: 'get',
    path: '/v1/responses/{id}/input_items',
    operationId: 'listResponseInputItems',
    tag: 'Responses (OpenAI-compatible)',
    summary: "A response's input items",
    params: responseId,
    query: responses.inputItemsQuery,
    ok: { 200: json(S.ResponseInputItems) },
    errors: [400, 404],
  },
];

const promptId = { id: ids.prompt };
const RolloutAnswer = { 200: json(S.PromptRollout) };
const promptOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/prompts',
    operationId: 'createPrompt',
    tag: 'Prompts',
    summary: 'Create a prompt (version 1)',
    body: prompts.createSchema,
    ok: { 201: created(S.Prompt) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/prompts',
    operationId: 'listPrompts',
    tag: 'Prompts',
    summary: 'List prompts',
    query: prompts.listSchema,
    ok: { 200: json(S.listOf(S.Prompt, 'PromptList')) },
    errors: [400],
  },
  { method: 'get', path: '/v1/prompts/{id}', operationId: 'getPrompt', tag: 'Prompts', summary: 'Get a prompt', params: promptId, ok: { 200: json(S.Prompt) }, errors: [400, 404] },
  {
    method: 'post',
    path: '/v1/prompts/{id}',
    operationId: 'updatePrompt',
    tag: 'Prompts',
    summary: 'Rename, roll back (`current_version`) or split traffic',
    params: promptId,
    body: prompts.updateSchema,
    ok: { 200: json(S.Prompt) },
    errors: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/prompts/{id}/versions',
    operationId: 'createPromptVersion',
    tag: 'Prompts',
    summary: 'Add a version (it becomes current)',
    params: promptId,
    body: prompts.versionSchema,
    ok: { 201: created(S.PromptVersion) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/prompts/{id}/versions',
    operationId: 'listPromptVersions',
    tag: 'Prompts',
    summary: "List a prompt's versions",
    params: promptId,
    query: prompts.versionListSchema,
    ok: { 200: json(S.listOf(S.PromptVersion, 'PromptVersionList')) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/prompts/{id}/versions/{version}',
    operationId: 'getPromptVersion',
    tag: 'Prompts',
    summary: 'Get a version',
    params: { ...promptId, version },
    ok: { 200: json(S.PromptVersion) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/prompts/{id}/rollout',
    operationId: 'startPromptRollout',
    tag: 'Prompts',
    summary: 'Roll a version out step by step, guarded by live metrics',
    params: promptId,
    body: prompts.rolloutSchema,
    ok: { 201: created(S.PromptRollout) },
    errors: [400, 404, 409],
  },
  {
    method: 'get',
    path: '/v1/prompts/{id}/rollout',
    operationId: 'getPromptRollout',
    tag: 'Prompts',
    summary: 'The active rollout, else the latest',
    params: promptId,
    ok: RolloutAnswer,
    errors: [400, 404],
  },
  ...(['pause', 'resume', 'abort'] as const).map(
    (action): Operation => ({
      method: 'post',
      path: `/v1/prompts/{id}/rollout/${action}`,
      operationId: `${action}PromptRollout`,
      tag: 'Prompts',
      summary: { pause: 'Hold the traffic split', resume: 'Resume (the step is measured afresh)', abort: 'All traffic back to the baseline' }[action],
      params: promptId,
      ok: RolloutAnswer,
      errors: [400, 404, 409],
    }),
  ),
  {
    method: 'get',
    path: '/v1/prompts/{id}/events',
    operationId: 'listPromptEvents',
    tag: 'Prompts',
    summary: 'Every routing change and rollout decision, with its figures',
    params: promptId,
    query: prompts.eventsSchema,
    ok: { 200: json(S.listOf(S.PromptEvent, 'PromptEventList')) },
    errors: [400, 404],
  },
];

const datasetId = { id: ids.dataset };
/** With a JSONL body the other fields are query parameters. */
const jsonlFields = z.object({
  name: z.string().optional().describe('JSONL bodies only: the dataset name'),
  description: z.string().optional().describe('JSONL bodies only'),
  note: z.string().optional().describe('JSONL bodies only'),
});
const datasetOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/datasets',
    operationId: 'createDataset',
    tag: 'Datasets',
    summary: 'Create a dataset (version 1)',
    description: 'Items as a JSON body, or as JSONL (`application/x-ndjson` or `application/jsonl`: one item a line, the other fields as query parameters).',
    query: jsonlFields,
    body: datasets.createSchema,
    bodyAs: 'jsonl',
    ok: { 201: created(S.Dataset) },
    errors: [400, 413],
  },
  {
    method: 'get',
    path: '/v1/datasets',
    operationId: 'listDatasets',
    tag: 'Datasets',
    summary: 'List datasets',
    query: datasets.listSchema,
    ok: { 200: json(S.listOf(S.Dataset, 'DatasetList')) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/datasets/{id}',
    operationId: 'getDataset',
    tag: 'Datasets',
    summary: 'Get a dataset',
    params: datasetId,
    ok: { 200: json(S.Dataset) },
    errors: [400, 404],
  },
  {
    method: 'delete',
    path: '/v1/datasets/{id}',
    operationId: 'deleteDataset',
    tag: 'Datasets',
    summary: 'Delete a dataset (not while a running eval uses it)',
    params: datasetId,
    ok: { 200: json(S.Deleted) },
    errors: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/datasets/{id}/versions',
    operationId: 'createDatasetVersion',
    tag: 'Datasets',
    summary: 'Add a version (JSON or JSONL)',
    params: datasetId,
    query: jsonlFields.pick({ note: true }),
    body: datasets.versionSchema,
    bodyAs: 'jsonl',
    ok: { 201: created(S.DatasetVersion) },
    errors: [400, 404, 413],
  },
  {
    method: 'get',
    path: '/v1/datasets/{id}/versions',
    operationId: 'listDatasetVersions',
    tag: 'Datasets',
    summary: "List a dataset's versions",
    params: datasetId,
    query: datasets.versionListSchema,
    ok: { 200: json(S.listOf(S.DatasetVersion, 'DatasetVersionList')) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/datasets/{id}/versions/{version}',
    operationId: 'getDatasetVersion',
    tag: 'Datasets',
    summary: 'Get a version',
    params: { ...datasetId, version },
    ok: { 200: json(S.DatasetVersion) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/datasets/{id}/versions/{version}/items',
    operationId: 'listDatasetItems',
    tag: 'Datasets',
    summary: "A version's items in order (offset-paginated)",
    params: { ...datasetId, version },
    query: datasets.itemListSchema,
    ok: { 200: json(S.listOf(S.DatasetItem, 'DatasetItemList')) },
    errors: [400, 404],
  },
];

const evalId = { id: ids.eval };
const evalOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/evals',
    operationId: 'createEval',
    tag: 'Evals',
    summary: "Run a prompt's versions over a dataset",
    body: evals.createSchema,
    ok: { 201: created(S.Eval) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/evals',
    operationId: 'listEvals',
    tag: 'Evals',
    summary: 'List evals',
    query: evals.listSchema,
    ok: { 200: json(S.listOf(S.Eval, 'EvalList')) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/evals/{id}',
    operationId: 'getEval',
    tag: 'Evals',
    summary: 'Get an eval with its summary',
    params: evalId,
    ok: { 200: json(S.EvalWithSummary) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/evals/{id}/results',
    operationId: 'listEvalResults',
    tag: 'Evals',
    summary: 'Its results, item by item',
    params: evalId,
    query: evals.resultsSchema,
    ok: { 200: json(S.listOf(S.EvalResult, 'EvalResultList')) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/evals/{id}/cancel',
    operationId: 'cancelEval',
    tag: 'Evals',
    summary: 'Cancel an eval',
    params: evalId,
    ok: { 200: json(S.Eval) },
    errors: [400, 404, 409],
  },
  {
    method: 'post',
    path: '/v1/evals/{id}/rerun',
    operationId: 'rerunEval',
    tag: 'Evals',
    summary: 'A new eval with the same inputs',
    params: evalId,
    ok: { 201: created(S.Eval) },
    errors: [400, 404],
  },
];

const pipelineId = { id: ids.pipeline };
const runId = { id: ids.run };
const pipelineOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/pipelines',
    operationId: 'createPipeline',
    tag: 'Pipelines',
    summary: 'Create a pipeline (version 1)',
    body: pipelines.createSchema,
    ok: { 201: created(S.Pipeline) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/pipelines',
    operationId: 'listPipelines',
    tag: 'Pipelines',
    summary: 'List pipelines',
    query: pipelines.listSchema,
    ok: { 200: json(S.listOf(S.Pipeline, 'PipelineList')) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/pipelines/{id}',
    operationId: 'getPipeline',
    tag: 'Pipelines',
    summary: 'Get a pipeline with its latest definition',
    params: pipelineId,
    ok: { 200: json(S.Pipeline) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/pipelines/{id}/versions',
    operationId: 'createPipelineVersion',
    tag: 'Pipelines',
    summary: 'Add a version',
    params: pipelineId,
    body: pipelines.versionSchema,
    ok: { 201: created(S.PipelineVersion) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/pipelines/{id}/versions/{version}',
    operationId: 'getPipelineVersion',
    tag: 'Pipelines',
    summary: 'Get a version',
    params: { ...pipelineId, version },
    ok: { 200: json(S.PipelineVersion) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/pipelines/{id}/runs',
    operationId: 'createRun',
    tag: 'Pipelines',
    summary: 'Run a version (default the latest) on inputs',
    params: pipelineId,
    body: pipelines.runSchema,
    ok: { 202: { schema: S.Run, description: 'Accepted', headers: { Location: 'The run' } } },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/runs',
    operationId: 'listRuns',
    tag: 'Pipelines',
    summary: 'List runs',
    query: pipelines.runListSchema,
    ok: { 200: json(S.listOf(S.Run, 'RunList')) },
    errors: [400],
  },
  { method: 'get', path: '/v1/runs/{id}', operationId: 'getRun', tag: 'Pipelines', summary: 'Get a run', params: runId, ok: { 200: json(S.Run) }, errors: [400, 404] },
  {
    method: 'post',
    path: '/v1/runs/{id}/cancel',
    operationId: 'cancelRun',
    tag: 'Pipelines',
    summary: 'Cancel a run',
    params: runId,
    ok: { 200: json(S.Run) },
    errors: [400, 404, 409],
  },
  {
    method: 'get',
    path: '/v1/runs/{id}/events',
    operationId: 'listRunEvents',
    tag: 'Pipelines',
    summary: "A run's recorded changes, oldest first",
    params: runId,
    query: z.strictObject({ after: z.coerce.number().int().min(0).default(0) }),
    ok: { 200: json(S.listOf(S.RunEvent, 'RunEventList')) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/runs/{id}/stream',
    operationId: 'streamRun',
    tag: 'Pipelines',
    summary: "A run's events as Server-Sent Events, live until it ends",
    params: runId,
    query: z.object({
      starting_after: z
        .string()
        .regex(/^\d{1,15}$/)
        .optional(),
    }),
    headers: { 'Last-Event-ID': 'Resume after this event' },
    ok: { 200: sse('`event:` is the RunEvent type, `data:` the RunEvent') },
    errors: [400, 404],
  },
];

const batchOps: Operation[] = [
  {
    method: 'get',
    path: '/v1/batches',
    operationId: 'listBatches',
    tag: 'Batches',
    summary: "List the tenant's batches",
    query: batches.listSchema,
    ok: { 200: json(S.listOf(S.Batch, 'BatchList')) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/batches/{id}',
    operationId: 'getBatch',
    tag: 'Batches',
    summary: 'Get a batch',
    params: { id: batches.batchIdSchema },
    ok: { 200: json(S.Batch) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/batches/{id}/events',
    operationId: 'listBatchEvents',
    tag: 'Batches',
    summary: "A batch's recorded changes",
    params: { id: batches.batchIdSchema },
    ok: { 200: json(S.BatchEvents) },
    errors: [400, 404],
  },
];

const fileId = { id: ids.file };
const conversationId = { id: ids.conversation };
const fileOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/files',
    operationId: 'uploadFile',
    tag: 'Files',
    summary: 'Upload a file (multipart, `purpose=user_data`)',
    body: z.object({ file: z.string().describe('The file (binary)'), purpose: z.literal('user_data') }),
    bodyAs: 'multipart',
    ok: { 200: json(S.File) },
    errors: [400, 413],
  },
  {
    method: 'get',
    path: '/v1/files',
    operationId: 'listFiles',
    tag: 'Files',
    summary: 'List files',
    query: files.listQuery,
    ok: { 200: json(S.listOf(S.File, 'FileList', true)) },
    errors: [400],
  },
  { method: 'get', path: '/v1/files/{id}', operationId: 'getFile', tag: 'Files', summary: 'Get a file', params: fileId, ok: { 200: json(S.File) }, errors: [400, 404] },
  { method: 'delete', path: '/v1/files/{id}', operationId: 'deleteFile', tag: 'Files', summary: 'Delete a file', params: fileId, ok: { 200: json(S.Deleted) }, errors: [400, 404] },
  {
    method: 'post',
    path: '/v1/conversations',
    operationId: 'createConversation',
    tag: 'Conversations',
    summary: 'Create a conversation (at the provider)',
    body: conversations.createBody,
    ok: { 200: json(S.Conversation) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/conversations/{id}',
    operationId: 'getConversation',
    tag: 'Conversations',
    summary: 'Get a conversation',
    params: conversationId,
    ok: { 200: json(S.Conversation) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/conversations/{id}',
    operationId: 'updateConversation',
    tag: 'Conversations',
    summary: "Replace a conversation's metadata",
    params: conversationId,
    body: conversations.updateBody,
    ok: { 200: json(S.Conversation) },
    errors: [400, 404],
  },
  {
    method: 'delete',
    path: '/v1/conversations/{id}',
    operationId: 'deleteConversation',
    tag: 'Conversations',
    summary: 'Delete a conversation',
    params: conversationId,
    ok: { 200: json(S.Deleted) },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/conversations/{id}/items',
    operationId: 'listConversationItems',
    tag: 'Conversations',
    summary: "A conversation's items",
    params: conversationId,
    query: conversations.itemsQuery,
    ok: { 200: json(S.ConversationItems) },
    errors: [400, 404],
  },
];

const endpointId = { id: ids.webhookEndpoint };
const deliveryId = { id: ids.delivery };
const webhookOps: Operation[] = [
  {
    method: 'post',
    path: '/v1/webhook-endpoints',
    operationId: 'createWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Create a webhook endpoint (its secret is shown once)',
    body: webhooks.createSchema,
    ok: { 201: json(S.WebhookEndpoint, 'Created') },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/webhook-endpoints',
    operationId: 'listWebhookEndpoints',
    tag: 'Webhooks',
    summary: 'List webhook endpoints',
    ok: { 200: json(S.listOf(S.WebhookEndpoint, 'WebhookEndpointList')) },
  },
  {
    method: 'get',
    path: '/v1/webhook-endpoints/{id}',
    operationId: 'getWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Get a webhook endpoint',
    params: endpointId,
    ok: { 200: json(S.WebhookEndpoint) },
    errors: [400, 404],
  },
  {
    method: 'patch',
    path: '/v1/webhook-endpoints/{id}',
    operationId: 'updateWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Update a webhook endpoint',
    params: endpointId,
    body: webhooks.patchSchema,
    ok: { 200: json(S.WebhookEndpoint) },
    errors: [400, 404],
  },
  {
    method: 'delete',
    path: '/v1/webhook-endpoints/{id}',
    operationId: 'deleteWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Delete a webhook endpoint',
    params: endpointId,
    ok: { 200: json(S.Deleted) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/rotate-secret',
    operationId: 'rotateWebhookEndpointSecret',
    tag: 'Webhooks',
    summary: 'Rotate the signing secret (the old one keeps signing for `overlap_seconds`)',
    params: endpointId,
    body: webhooks.rotateSchema,
    ok: { 200: json(S.WebhookEndpoint) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/webhook-endpoints/{id}/recover',
    operationId: 'recoverWebhookEndpoint',
    tag: 'Webhooks',
    summary: 'Redeliver the failed deliveries since a time',
    params: endpointId,
    body: webhooks.recoverSchema,
    ok: { 202: json(S.Recovery, 'Accepted') },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/deliveries',
    operationId: 'listDeliveries',
    tag: 'Webhooks',
    summary: 'The delivery log',
    query: webhooks.listDeliveriesSchema,
    ok: { 200: json(S.listOf(S.Delivery, 'DeliveryList', true)) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/deliveries/{id}',
    operationId: 'getDelivery',
    tag: 'Webhooks',
    summary: 'Get a delivery with its attempts',
    params: deliveryId,
    ok: { 200: json(S.Delivery) },
    errors: [400, 404],
  },
  {
    method: 'post',
    path: '/v1/deliveries/{id}/retry',
    operationId: 'retryDelivery',
    tag: 'Webhooks',
    summary: 'Retry a failed or cancelled delivery',
    params: deliveryId,
    ok: { 202: json(S.Delivery, 'Accepted') },
    errors: [400, 404],
  },
  {
    method: 'get',
    path: '/v1/callback-secret',
    operationId: 'getCallbackSecret',
    tag: 'Webhooks',
    summary: "The secret that signs callbacks to jobs' own callback_url",
    ok: { 200: json(S.CallbackSecret) },
  },
];

const accountOps: Operation[] = [
  {
    method: 'get',
    path: '/v1/usage',
    operationId: 'getUsage',
    tag: 'Usage',
    summary: 'Tokens, cached-token ratio and estimated cost over [from, to)',
    query: usage.querySchema,
    ok: { 200: json(S.Usage) },
    errors: [400],
  },
  {
    method: 'delete',
    path: '/v1/cache',
    operationId: 'clearResponseCache',
    tag: 'Usage',
    summary: "Empty the tenant's response cache (or one prompt's, or one version's)",
    query: cache.deleteQuery,
    ok: { 200: json(S.CacheDeleted) },
    errors: [400],
  },
  {
    method: 'post',
    path: '/v1/api-keys',
    operationId: 'createApiKey',
    tag: 'API keys',
    summary: 'Make an API key (shown once)',
    body: apiKeys.createSchema,
    ok: { 201: json(S.NewApiKey, 'Created') },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/api-keys',
    operationId: 'listApiKeys',
    tag: 'API keys',
    summary: "List the tenant's API keys",
    query: apiKeys.listSchema,
    ok: { 200: json(S.listOf(S.ApiKey, 'ApiKeyList', true)) },
    errors: [400],
  },
  {
    method: 'get',
    path: '/v1/api-keys/{id}',
    operationId: 'getApiKey',
    tag: 'API keys',
    summary: 'Get an API key',
    params: { id: ids.apiKey },
    ok: { 200: json(S.ApiKey) },
    errors: [400, 404],
  },
  {
    method: 'delete',
    path: '/v1/api-keys/{id}',
    operationId: 'revokeApiKey',
    tag: 'API keys',
    summary: 'Revoke an API key (the last one only with `force=true`)',
    params: { id: ids.apiKey },
    query: apiKeys.revokeSchema,
    ok: { 200: json(S.ApiKey) },
    errors: [400, 404, 409],
  },
];

export const OPERATIONS: readonly Operation[] = [
  ...jobOps,
  ...responseOps,
  ...promptOps,
  ...datasetOps,
  ...evalOps,
  ...pipelineOps,
  ...batchOps,
  ...fileOps,
  ...webhookOps,
  ...accountOps,
];
