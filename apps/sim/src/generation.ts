/**
 * What a simulated model "writes": deterministic text, reasoning-token counts and a reasoning
 * summary derived from a hash of the prompt, so the same request always yields the same answer.
 * Higher reasoning effort means more reasoning tokens, a longer answer and a longer run.
 */
import { createHash } from 'node:crypto';
import { mulberry32, type Random } from './random.ts';
import { countTokens } from './usage.ts';

export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

interface EffortProfile {
  /** Reasoning tokens are drawn uniformly from [0.75, 1.25) × this. */
  reasoningTokens: number;
  answerWords: number;
  /** Multiplies the default simulated duration. */
  durationFactor: number;
}

const PROFILES: Record<ReasoningEffort, EffortProfile> = {
  none: { reasoningTokens: 0, answerWords: 30, durationFactor: 0.25 },
  minimal: { reasoningTokens: 0, answerWords: 40, durationFactor: 0.25 },
  low: { reasoningTokens: 256, answerWords: 60, durationFactor: 0.5 },
  medium: { reasoningTokens: 1024, answerWords: 100, durationFactor: 1 },
  high: { reasoningTokens: 4096, answerWords: 160, durationFactor: 2 },
  xhigh: { reasoningTokens: 8192, answerWords: 220, durationFactor: 3 },
  max: { reasoningTokens: 16384, answerWords: 300, durationFactor: 4 },
};

const WORDS = (
  'the a durable job runs long reasoning model answer result background queue worker poll webhook ' +
  'signal state retry backoff token cache prefix input output summary response careful plan step ' +
  'consider evidence therefore because however thus analysis detail system process value data ' +
  'check verify measure estimate compare choose build ship observe recover resume finish ' +
  'latency throughput deadline budget'
).split(' ');

export interface Generation {
  text: string;
  textTokens: number;
  reasoningTokens: number;
  /** Summary paragraphs; empty unless a reasoning summary was requested. */
  summary: string[];
}

export function effortProfile(effort: ReasoningEffort): EffortProfile {
  return PROFILES[effort];
}

export function generate(prompt: string, effort: ReasoningEffort, wantSummary: boolean): Generation {
  const random = mulberry32(createHash('sha256').update(prompt).digest().readUInt32LE(0));
  const profile = PROFILES[effort];
  const text = sentences(random, profile.answerWords);
  const reasoningTokens = Math.round(profile.reasoningTokens * (0.75 + 0.5 * random()));
  const summary = wantSummary && reasoningTokens > 0 ? [`**Reasoning about the request**\n\n${sentences(random, 24)}`] : [];
  return { text, textTokens: countTokens(text), reasoningTokens, summary };
}

/** The first `tokens` worth of `text`, for responses cut off by max_output_tokens. */
export function truncateToTokens(text: string, tokens: number): string {
  return text.slice(0, Math.max(0, tokens) * 4);
}

function sentences(random: Random, words: number): string {
  const out: string[] = [];
  let sentence: string[] = [];
  for (let i = 0; i < words; i++) {
    sentence.push(WORDS[Math.floor(random() * WORDS.length)] as string);
    if (sentence.length >= 6 + Math.floor(random() * 8) || i === words - 1) {
      const joined = sentence.join(' ');
      out.push(`${joined.charAt(0).toUpperCase()}${joined.slice(1)}.`);
      sentence = [];
    }
  }
  return out.join(' ');
}
