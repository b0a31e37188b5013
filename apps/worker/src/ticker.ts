/**
 * A periodic loop of one process (the batch, eval and rollout loops): `run` every `everyMs`,
 * never two at once (a tick asked for while one runs gets that one's result), and a close that
 * stops the timer and waits for the tick in progress.
 */
export interface Ticker<T> {
  /** Run now (or join the run in progress). */
  tick(): Promise<T>;
  close(): Promise<void>;
}

export function startTicker<T>(run: () => Promise<T>, everyMs: number, onError: (err: unknown) => void): Ticker<T> {
  let ticking: Promise<T> | undefined;
  const tick = () =>
    (ticking ??= run().finally(() => {
      ticking = undefined;
    }));
  const timer = setInterval(() => {
    tick().catch(onError);
  }, everyMs);
  return {
    tick,
    async close() {
      clearInterval(timer);
      await ticking?.catch(() => {});
    },
  };
}
