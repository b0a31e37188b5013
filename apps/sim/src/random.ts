/** Randomness for fault injection: seeded (mulberry32) when a seed is configured, Math.random otherwise. */
export type Random = () => number;

export function createRandom(seed: number | null): Random {
  return seed === null ? Math.random : mulberry32(seed);
}

export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** True with probability `rate`: a rate of 1 always fires, 0 never does. */
export function chance(random: Random, rate: number): boolean {
  return rate > 0 && random() < rate;
}

export function shuffle<T>(items: T[], random: Random): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
