/**
 * What reasoning effort a model accepts, for the model families whose rules are known. The
 * provider is the authority: for a model not listed here every effort is passed through and the
 * provider answers. Known refusals are made early (a 400 at submission instead of a job that
 * fails minutes later in the queue).
 */
export const REASONING_EFFORTS = ['none', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;
export type ReasoningEffort = (typeof REASONING_EFFORTS)[number];

const FAMILIES: { pattern: RegExp; efforts: readonly ReasoningEffort[]; family: string }[] = [
  // o1, o3, o3-pro, o4-mini, with or without a date suffix: no `minimal` (that came with GPT-5).
  { pattern: /^o\d(-mini|-pro)?(-\d{4}-\d{2}-\d{2})?$/, efforts: ['low', 'medium', 'high'], family: 'o-series' },
  // gpt-5, gpt-5-mini, gpt-5-nano (and dated snapshots): `minimal` is theirs.
  { pattern: /^gpt-5(-mini|-nano)?(-\d{4}-\d{2}-\d{2})?$/, efforts: ['minimal', 'low', 'medium', 'high'], family: 'gpt-5' },
];

/** The efforts a model accepts, or null when Longhaul does not know (then the provider decides). */
export function supportedReasoningEfforts(model: string): readonly ReasoningEffort[] | null {
  return FAMILIES.find((f) => f.pattern.test(model))?.efforts ?? null;
}

export function checkReasoningEffort(model: string, effort: string): { ok: true } | { ok: false; message: string } {
  const supported = supportedReasoningEfforts(model);
  if (!supported || supported.includes(effort as ReasoningEffort)) return { ok: true };
  return { ok: false, message: `Unsupported value: '${effort}' is not supported with the '${model}' model. Supported values are: ${supported.map((e) => `'${e}'`).join(', ')}.` };
}
