/**
 * One timer for the whole simulator. Response state is derived from the clock when read, so the
 * only things that need a timer are actions that must *happen* at a time (sending a webhook).
 * Tasks live in a binary min-heap ordered by due time (ties by insertion order); a single
 * setTimeout is armed for the earliest one. `close()` clears the heap and the timer.
 */
export type Clock = () => number;

interface Entry {
  at: number;
  seq: number;
  run: () => void;
}

/** Node caps setTimeout delays at 2^31-1 ms; longer waits re-arm when the timer fires. */
const MAX_DELAY_MS = 2_147_483_647;

export class Scheduler {
  readonly #clock: Clock;
  readonly #onError: (error: unknown) => void;
  #heap: Entry[] = [];
  #seq = 0;
  #timer: NodeJS.Timeout | null = null;
  #armedFor = Number.POSITIVE_INFINITY;
  #closed = false;

  constructor(clock: Clock, onError: (error: unknown) => void) {
    this.#clock = clock;
    this.#onError = onError;
  }

  get size(): number {
    return this.#heap.length;
  }

  /** Runs `run` at clock time `at` (ms), or on the next tick when `at` is already past. */
  schedule(at: number, run: () => void): void {
    if (this.#closed) return;
    this.#push({ at, seq: this.#seq++, run });
    this.#arm();
  }

  /** Runs every task that is due now; the timer calls this, tests with a fixed clock may too. */
  runDue(): void {
    const now = this.#clock();
    while (this.#heap.length > 0 && (this.#heap[0] as Entry).at <= now) {
      const entry = this.#pop();
      try {
        entry.run();
      } catch (error) {
        this.#onError(error);
      }
    }
    this.#arm();
  }

  /** Drops every pending task (used by /sim/reset); the scheduler stays usable. */
  clear(): void {
    this.#heap = [];
    this.#disarm();
  }

  close(): void {
    this.#closed = true;
    this.clear();
  }

  #arm(): void {
    const next = this.#heap[0];
    if (next === undefined || this.#closed) {
      this.#disarm();
      return;
    }
    if (this.#timer !== null && this.#armedFor <= next.at) return;
    this.#disarm();
    const delay = Math.min(Math.max(0, next.at - this.#clock()), MAX_DELAY_MS);
    this.#armedFor = next.at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#armedFor = Number.POSITIVE_INFINITY;
      this.runDue();
    }, delay);
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedFor = Number.POSITIVE_INFINITY;
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent] as Entry)) break;
      heap[i] = heap[parent] as Entry;
      i = parent;
    }
    heap[i] = entry;
  }

  #pop(): Entry {
    const heap = this.#heap;
    const top = heap[0] as Entry;
    const last = heap.pop() as Entry;
    if (heap.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right] as Entry, heap[left] as Entry) ? right : left;
      if (!before(heap[child] as Entry, last)) break;
      heap[i] = heap[child] as Entry;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
