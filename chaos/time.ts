/** Small time helpers shared by the chaos suite. */

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `1234` → `1.2 s`; null → `–`. */
export function seconds(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return `${(ms / 1000).toFixed(1)} s`;
}

/** A deterministic pseudo-random number in [0, 1) for index `i` (job durations, kill picks). */
export function unitRandom(i: number, salt = 0): number {
  let x = (i + 1) * 2654435761 + salt * 40503;
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  x = Math.imul(x ^ (x >>> 16), 0x45d9f3b);
  x ^= x >>> 16;
  return (x >>> 0) / 4294967296;
}
