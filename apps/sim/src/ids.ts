import { randomBytes } from 'node:crypto';

/** OpenAI-looking identifiers: `resp_` + 48 hex chars, `msg_…`, `rs_…`, `evt_` + 32 hex chars. */
export function newId(prefix: 'resp' | 'msg' | 'rs' | 'req', bytes = 24): string {
  return `${prefix}_${randomBytes(bytes).toString('hex')}`;
}

export function newEventId(): string {
  return `evt_${randomBytes(16).toString('hex')}`;
}
