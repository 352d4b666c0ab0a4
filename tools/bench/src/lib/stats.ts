/** Small statistics helpers of the harness. */

/** Median of the numbers (NaN when empty). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile `p` (0..100) of the numbers (NaN when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Wall-clock milliseconds comparable across processes of this machine (sub-millisecond resolution). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
