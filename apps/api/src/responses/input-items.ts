/**
 * `GET /v1/responses/{id}/input_items`: the response's own input, as OpenAI's `ResponseItemList`.
 * Once the provider has the response it answers (its item ids are the ones OpenAI minted); before
 * that (the job waits for admission, or failed before reaching the provider) the list is built
 * from the job's stored request, each item with an id derived from the job's and its position, so
 * pages and repeated reads agree.
 */
import type { Job } from '@longhaul/db';

type Item = Record<string, unknown>;

export interface InputItemsQuery {
  limit: number;
  order: 'asc' | 'desc';
  after?: string;
}

function contentOf(role: unknown, content: unknown): unknown {
  if (typeof content !== 'string') return content;
  return role === 'assistant' ? [{ type: 'output_text', text: content, annotations: [], logprobs: [] }] : [{ type: 'input_text', text: content }];
}

/** The job's input as OpenAI lists it: string input is one user message; every item has an id. */
function storedItems(job: Job): Item[] {
  const suffix = job.id.slice(job.id.indexOf('_') + 1);
  const input = job.request.input;
  const items: Item[] = typeof input === 'string' ? [{ role: 'user', content: input }] : Array.isArray(input) ? (input as Item[]) : [];
  return items.map((item, i) => {
    const isMessage = item.type === undefined || item.type === 'message';
    const id = typeof item.id === 'string' ? item.id : `${isMessage ? 'msg' : 'item'}_lh${suffix}${String(i).padStart(4, '0')}`;
    if (!isMessage) return { ...item, id, ...(item.status === undefined && /_call(_output)?$/.test(String(item.type)) ? { status: 'completed' } : {}) };
    return { id, type: 'message', role: item.role, status: item.status ?? 'completed', content: contentOf(item.role, item.content) };
  });
}

/** One page of the job's input items (`after` an id of the same order). */
export function inputItemsPage(job: Job, query: InputItemsQuery) {
  const all = storedItems(job);
  const ordered = query.order === 'asc' ? all : [...all].reverse();
  const start = query.after === undefined ? 0 : ordered.findIndex((item) => item.id === query.after) + 1;
  const data = start === 0 && query.after !== undefined ? [] : ordered.slice(start, start + query.limit);
  return {
    object: 'list' as const,
    data,
    first_id: (data[0]?.id as string | undefined) ?? null,
    last_id: (data.at(-1)?.id as string | undefined) ?? null,
    has_more: start + data.length < ordered.length,
  };
}
