/**
 * Arithmetic answers, so an evaluation of two prompt versions over a dataset of arithmetic items
 * measurably prefers one (issue 18). Pure: no IO, no clock, no randomness beyond a hash.
 *
 * Design note. A request is an arithmetic question when the last user message's text (a string
 * input, or the `input_text` parts of the last user item joined by newlines) ends, as its final
 * line's last sentence, with `What is A op B?`, `Compute A op B` or `Calculate A op B`
 * (case-insensitive; A and B integers, possibly negative; op one of `+ - * x × /`; `/` only when it
 * divides exactly). Anything else is not a question and is answered as before.
 *
 * The answer is just the number. It is right iff u < accuracy, where u in [0, 1) comes from the
 * sha256 of the user text and the instructions, and accuracy from the reasoning effort (ACCURACY)
 * unless `metadata.sim_accuracy` overrides it. Because u does not depend on the effort, the same
 * question is answered the same way every time, and a higher effort only ever turns wrong answers
 * right. A wrong answer is the right one plus a non-zero offset (±1..±9) from the same hash.
 */
import { createHash } from 'node:crypto';
import type { ReasoningEffort } from './generation.ts';

/** Probability of a right answer at each reasoning effort. */
export const ACCURACY: Record<ReasoningEffort, number> = {
  none: 0.4,
  minimal: 0.5,
  low: 0.6,
  medium: 0.75,
  high: 0.9,
  xhigh: 0.95,
  max: 0.97,
};

export type Operator = '+' | '-' | '*' | '/';

export interface Question {
  left: bigint;
  operator: Operator;
  right: bigint;
  /** The exact result (a `/` question is only recognised when it divides exactly). */
  result: bigint;
}

const QUESTION = /^(?:what\s+is|compute|calculate)\s+(-?\d+)\s*([-+*x×/])\s*(-?\d+)\s*[?.!]?$/i;
/** Longer operands are not a simple question (and keep BigInt work trivially small). */
const MAX_DIGITS = 30;

/** The question `text` ends with, or null when it does not end with one. */
export function parseQuestion(text: string): Question | null {
  const lines = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  const sentence = lines
    .at(-1)
    ?.split(/(?<=[.!?])\s+/)
    .at(-1);
  const match = sentence === undefined ? null : QUESTION.exec(sentence);
  if (match === null) return null;
  const [, rawLeft, rawOperator, rawRight] = match as unknown as [string, string, string, string];
  if (rawLeft.replace('-', '').length > MAX_DIGITS || rawRight.replace('-', '').length > MAX_DIGITS) return null;
  const left = BigInt(rawLeft);
  const right = BigInt(rawRight);
  const operator = operatorOf(rawOperator);
  const result = apply(left, operator, right);
  return result === null ? null : { left, operator, right, result };
}

function operatorOf(raw: string): Operator {
  if (raw === '+' || raw === '-' || raw === '/') return raw;
  return '*';
}

function apply(left: bigint, operator: Operator, right: bigint): bigint | null {
  switch (operator) {
    case '+':
      return left + right;
    case '-':
      return left - right;
    case '*':
      return left * right;
    case '/':
      return right !== 0n && left % right === 0n ? left / right : null;
    default:
      return assertNever(operator);
  }
}

function assertNever(value: never): never {
  throw new Error(`unexpected operator ${String(value)}`);
}

/** The text of the last user message in `input` (a string input is one user message). */
export function lastUserText(input: string | readonly Record<string, unknown>[] | null): string | null {
  if (input === null) return null;
  if (typeof input === 'string') return input;
  for (let i = input.length - 1; i >= 0; i--) {
    const item = input[i] as Record<string, unknown>;
    if (item['role'] !== 'user' || (item['type'] !== undefined && item['type'] !== 'message')) continue;
    return contentText(item['content']);
  }
  return null;
}

function contentText(content: unknown): string | null {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  const texts = content
    .filter((part): part is Record<string, unknown> => typeof part === 'object' && part !== null && part['type'] === 'input_text')
    .map((part) => part['text'])
    .filter((text): text is string => typeof text === 'string');
  return texts.length === 0 ? null : texts.join('\n');
}

export interface ArithmeticRequest {
  input: string | readonly Record<string, unknown>[] | null;
  /** The instructions the response runs with (a hosted prompt's and the request's, joined). */
  instructions: string | null;
  effort: ReasoningEffort;
  /** `metadata.sim_accuracy`, or null to take the effort's. */
  accuracy: number | null;
}

/** The answer to the request's arithmetic question, or null when it asks none. */
export function arithmeticAnswer(request: ArithmeticRequest): string | null {
  const text = lastUserText(request.input);
  const question = text === null ? null : parseQuestion(text);
  if (text === null || question === null) return null;
  const digest = createHash('sha256')
    .update(`${text}\u0000${request.instructions ?? ''}`)
    .digest();
  const u = digest.readUInt32LE(0) / 4294967296;
  const accuracy = request.accuracy ?? ACCURACY[request.effort];
  if (u < accuracy) return question.result.toString();
  const magnitude = BigInt(1 + (digest.readUInt8(4) % 9));
  const offset = digest.readUInt8(5) % 2 === 0 ? magnitude : -magnitude;
  return (question.result + offset).toString();
}
