/** A minimal Server-Sent Events client over fetch streaming (what a browser's EventSource does). */
export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

export interface SseOptions {
  headers?: Record<string, string>;
  /** Stop after this many events (simulating a dropped connection). */
  maxEvents?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Comment lines seen (heartbeats). */
  onComment?: (text: string) => void;
  /** Each event as it arrives (to act while the stream is still open). */
  onEvent?: (event: SseEvent) => void;
}

/** Read events until the server closes the stream (or `maxEvents` / the timeout). */
export async function readSse(url: string, options: SseOptions = {}): Promise<{ events: SseEvent[]; status: number; closedByServer: boolean; body?: string }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 30_000);
  options.signal?.addEventListener('abort', () => controller.abort());
  const events: SseEvent[] = [];
  let closedByServer = false;
  try {
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...options.headers }, signal: controller.signal });
    if (!res.ok || !res.body) return { events, status: res.status, closedByServer: true, body: await res.text() };
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let current: SseEvent = { id: null, event: 'message', data: '' };
    let hasData = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        closedByServer = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (line === '') {
          if (hasData) {
            events.push(current);
            options.onEvent?.(current);
          }
          current = { id: null, event: 'message', data: '' };
          hasData = false;
          if (options.maxEvents !== undefined && events.length >= options.maxEvents) {
            await reader.cancel();
            return { events, status: res.status, closedByServer: false };
          }
        } else if (line.startsWith(':')) {
          options.onComment?.(line.slice(1).trim());
        } else {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') current.id = value;
          else if (field === 'event') current.event = value;
          else if (field === 'data') {
            current.data += (hasData ? '\n' : '') + value;
            hasData = true;
          }
        }
      }
    }
    return { events, status: res.status, closedByServer };
  } catch (err) {
    if (controller.signal.aborted) return { events, status: 0, closedByServer };
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
