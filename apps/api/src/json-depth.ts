/**
 * JSON nesting is limited where JSON is read, on the raw bytes, before it is parsed: every JSON
 * body of the API (express.json's `verify`) and the OpenAI webhook receiver refuse a document
 * nested deeper than MAX_NESTING with a 400 naming where, so no deep document is ever built,
 * walked or re-encoded (JSON.stringify recurses: 20,000 levels overflowed the stack).
 *
 * The scan is one pass with no recursion and at most MAX_NESTING frames. It only counts brackets
 * outside strings; it does not validate (JSON.parse still does). Scanning bytes is safe for UTF-8:
 * every byte of a multi-byte character is ≥ 0x80, so none is taken for a quote, a backslash or a
 * bracket.
 */
import type { IncomingMessage } from 'node:http';
import type { ValidationError } from '@longhaul/core';
import { MAX_NESTING, inputProblemError, tooDeep } from './request-input.ts';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** An open array (counting its elements) or object (where its current key's quotes are). */
interface Frame {
  array: boolean;
  index: number;
  keyStart: number;
  keyEnd: number;
  awaitingKey: boolean;
}

/** Longest key decoded for an error's `param`, in bytes (the param is cut at 512 characters anyway). */
const KEY_LIMIT = 256;

function keyAt(json: Buffer, frame: Frame): string {
  if (frame.keyStart < 0) return '?';
  if (frame.keyEnd - frame.keyStart > KEY_LIMIT) return `${json.toString('utf8', frame.keyStart + 1, frame.keyStart + 1 + KEY_LIMIT)}…`;
  const raw = json.toString('utf8', frame.keyStart, frame.keyEnd);
  try {
    return JSON.parse(raw) as string;
  } catch {
    return raw.slice(1, -1);
  }
}

/**
 * The path of the first container in `json` nested deeper than `max` levels (the document's own
 * object or array is level 1), as `findUnstorableText` names it, or null.
 */
export function tooDeepAt(json: Buffer, max = MAX_NESTING): (string | number)[] | null {
  const frames: Frame[] = [];
  for (let i = 0; i < json.length; i++) {
    switch (json[i]) {
      case QUOTE: {
        // A string ends at the next quote not escaped by an odd run of backslashes; the native
        // search skips long strings (a 2 MB input) quickly.
        let end = i;
        for (;;) {
          end = json.indexOf(QUOTE, end + 1);
          if (end < 0) return null;
          let slashes = 0;
          while (json[end - 1 - slashes] === BACKSLASH) slashes++;
          if (slashes % 2 === 0) break;
        }
        const top = frames[frames.length - 1];
        if (top?.awaitingKey) {
          top.keyStart = i;
          top.keyEnd = end + 1;
          top.awaitingKey = false;
        }
        i = end;
        break;
      }
      case OPEN_ARRAY:
      case OPEN_OBJECT:
        if (frames.length >= max) return frames.map((frame) => (frame.array ? frame.index : keyAt(json, frame)));
        frames.push({ array: json[i] === OPEN_ARRAY, index: 0, keyStart: -1, keyEnd: -1, awaitingKey: json[i] === OPEN_OBJECT });
        break;
      case CLOSE_ARRAY:
      case CLOSE_OBJECT:
        frames.pop();
        break;
      case COMMA: {
        const top = frames[frames.length - 1];
        if (top?.array) top.index += 1;
        else if (top) top.awaitingKey = true;
        break;
      }
    }
  }
  return null;
}

/** The ValidationError (400, `nesting_too_deep`, naming where) for `json` nested too deep, or null. */
export function nestingError(json: Buffer): ValidationError | null {
  const path = tooDeepAt(json);
  return path ? inputProblemError(tooDeep(path)) : null;
}

/**
 * express.json's `verify`: refuses a body nested too deeply before it is parsed. A body in another
 * charset than UTF-8 is decoded first (an unknown one is left to the parser, which refuses it).
 */
export function refuseDeepJson(_req: IncomingMessage, _res: unknown, body: Buffer, encoding: string): void {
  let bytes = body;
  if (encoding && !/^utf-?8$/i.test(encoding)) {
    try {
      bytes = Buffer.from(new TextDecoder(encoding).decode(body), 'utf8');
    } catch {
      return;
    }
  }
  const error = nestingError(bytes);
  if (error) throw error;
}
