/** A raw SSE reader, to check the wire format the SDK hides and to observe cut connections. */

export interface SseFrame {
  event: string | null;
  data: string;
  /** ms since the request started when the frame was complete. */
  receivedAfterMs: number;
}

export interface SseResult {
  status: number;
  contentType: string | null;
  frames: SseFrame[];
  /** Everything received, as text. */
  raw: string;
  /** Set when the body broke off instead of ending (a cut connection). */
  error: unknown;
}

/** GETs or POSTs `url` and reads the whole event stream. */
export async function readSse(url: string, body?: unknown): Promise<SseResult> {
  const started = Date.now();
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: 'Bearer sk-test', 'content-type': 'application/json', accept: 'text/event-stream' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const result: SseResult = { status: res.status, contentType: res.headers.get('content-type'), frames: [], raw: '', error: null };
  if (res.body === null) return result;
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body) {
      const text = decoder.decode(chunk as Uint8Array, { stream: true });
      result.raw += text;
      buffer += text;
      for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
        result.frames.push(parseFrame(buffer.slice(0, end), Date.now() - started));
        buffer = buffer.slice(end + 2);
      }
    }
  } catch (error) {
    result.error = error;
  }
  return result;
}

function parseFrame(block: string, receivedAfterMs: number): SseFrame {
  let event: string | null = null;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event: ')) event = line.slice('event: '.length);
    else if (line.startsWith('data: ')) data.push(line.slice('data: '.length));
  }
  return { event, data: data.join('\n'), receivedAfterMs };
}
