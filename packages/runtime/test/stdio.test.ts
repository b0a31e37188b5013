import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { stdioDrained, stdoutDestination } from '../src/stdio.ts';

/** A stream whose reader is away until `resume()`: writes queue up in it, as on an unread pipe. */
function unreadStream() {
  const lines: string[] = [];
  let release: (() => void)[] = [];
  let reading = false;
  const stream = new Writable({
    highWaterMark: 1024,
    write(chunk, _encoding, callback) {
      lines.push(String(chunk));
      if (reading) callback();
      else release.push(callback);
    },
  });
  const resume = () => {
    reading = true;
    for (const callback of release) callback();
    release = [];
  };
  return { stream, lines, resume };
}

describe('stdoutDestination', () => {
  it('drops lines while more than maxQueuedBytes wait, then says how many', async () => {
    const { stream, lines, resume } = unreadStream();
    const destination = stdoutDestination({ stream, maxQueuedBytes: 100, service: 'test' });
    for (let i = 0; i < 50; i++) destination.write(`${JSON.stringify({ i, pad: 'x'.repeat(20) })}\n`);
    resume();
    await new Promise((r) => setImmediate(r));
    destination.write('{"after":true}\n');

    const parsed = lines.map((l) => JSON.parse(l));
    const kept = parsed.filter((l) => 'i' in l).length;
    expect(kept).toBeLessThan(50);
    const note = parsed.find((l) => l.code === 'log_lines_dropped');
    expect(note).toMatchObject({ level: 'warn', service: 'test', dropped: 50 - kept });
    expect(parsed.at(-1)).toEqual({ after: true });
  });

  it('stops writing, without throwing, once the stream has failed (EPIPE)', () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(String(chunk));
        callback(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const destination = stdoutDestination({ stream });
    destination.write('one\n');
    expect(() => destination.write('two\n')).not.toThrow();
    expect(lines).toEqual(['one\n']);
  });

  it('stdioDrained resolves within its bound even when nobody reads', async () => {
    const { stream } = unreadStream();
    stream.write('x'.repeat(10));
    await stdioDrained(50, [stream]);
    expect(stream.writableLength).toBeGreaterThan(0);
  });
});
