/**
 * Label values that come from clients (model names, tenant ids) must not grow a metric without
 * bound: each distinct value is a time series kept forever. A bounded label passes the first
 * `limit` distinct values through and folds the rest into `other`.
 */
export const OTHER_LABEL = 'other';

export function boundedLabel(limit: number): (value: string | null | undefined) => string {
  const seen = new Set<string>();
  return (value) => {
    if (!value) return 'none';
    if (seen.has(value)) return value;
    if (seen.size >= limit) return OTHER_LABEL;
    seen.add(value);
    return value;
  };
}
