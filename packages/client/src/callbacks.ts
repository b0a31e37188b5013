/**
 * `callbacks.verify(rawBody, headers, secret)`: a Longhaul callback checked as Standard Webhooks
 * defines it (https://www.standardwebhooks.com), with the `standardwebhooks` library: an HMAC of
 * `webhook-id.webhook-timestamp.body` under the `whsec_` secret, compared in constant time, and a
 * timestamp within five minutes. Verify the raw bytes as received: a body parsed and re-serialized
 * is not what was signed. During a secret rotation pass both secrets (or rely on the two
 * signatures Longhaul sends in the header).
 */
import { Webhook } from 'standardwebhooks';
import type { CallbackEvent } from './api-types.ts';
import { CallbackVerificationError } from './errors.ts';

/** `fetch`'s Headers, Node's `IncomingHttpHeaders`, or a plain record (any letter case). */
export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

function plainHeaders(headers: HeadersLike): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof Headers !== 'undefined' && headers instanceof Headers) {
    headers.forEach((value, key) => {
      out[key] = value;
    });
    return out;
  }
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) out[key.toLowerCase()] = Array.isArray(value) ? value.join(' ') : value;
  }
  return out;
}

export function verifyCallback(rawBody: string | Uint8Array, headers: HeadersLike, secret: string | readonly string[]): CallbackEvent {
  const body = typeof rawBody === 'string' ? rawBody : new TextDecoder().decode(rawBody);
  const plain = plainHeaders(headers);
  let failure: unknown;
  for (const s of typeof secret === 'string' ? [secret] : secret) {
    try {
      return new Webhook(s).verify(body, plain) as CallbackEvent;
    } catch (err) {
      failure = err;
    }
  }
  const reason = failure instanceof Error ? failure.message : 'no secret given';
  throw new CallbackVerificationError(`Callback refused: ${reason}.`, { code: 'invalid_signature', cause: failure });
}
