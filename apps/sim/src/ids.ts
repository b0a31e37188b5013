import { randomBytes } from 'node:crypto';

/** OpenAI-looking identifiers: `resp_` + 48 hex chars, `msg_…`, `rs_…`, `conv_…`, `evt_` + 32 hex chars. */
export function newId(prefix: 'resp' | 'msg' | 'rs' | 'req' | 'conv' | 'item', bytes = 24): string {
  return `${prefix}_${randomBytes(bytes).toString('hex')}`;
}

export function newEventId(): string {
  return `evt_${randomBytes(16).toString('hex')}`;
}

const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `file-` + 22 base-62 characters, as OpenAI's file ids look. */
export function newFileId(): string {
  const bytes = randomBytes(22);
  let id = 'file-';
  for (const byte of bytes) id += BASE62[byte % BASE62.length];
  return id;
}
