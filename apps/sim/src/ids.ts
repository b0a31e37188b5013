import { randomBytes } from 'node:crypto';

/** OpenAI-looking identifiers: `resp_` + 48 hex chars, `msg_…`, `rs_…`, `conv_…`, tool items (`fc_…`, `mcpl_…`, `mcpr_…`, `mcp_…`), batches (`batch_…`, lines `batch_req_…`), `evt_` + 32 hex chars. */
export function newId(prefix: 'resp' | 'msg' | 'rs' | 'req' | 'conv' | 'item' | 'fc' | 'mcpl' | 'mcpr' | 'mcp' | 'batch' | 'batch_req', bytes = 24): string {
  return `${prefix}_${randomBytes(bytes).toString('hex')}`;
}

export function newEventId(): string {
  return `evt_${randomBytes(16).toString('hex')}`;
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `file-` + 22 base-62 characters, as OpenAI's file ids look. */
export function newFileId(): string {
  return base62Id('file-', 22);
}

/** `call_` + 24 base-62 characters, as the call_id of OpenAI's function calls looks. */
export function newCallId(): string {
  return base62Id('call_', 24);
}

function base62Id(prefix: string, length: number): string {
  let id = prefix;
  for (const byte of randomBytes(length)) id += BASE62[byte % BASE62.length];
  return id;
}
