import { ErrorCodes } from "@omnirelay/core";

// The soak's verdict: what it measured, and whether the dispatcher stayed flat after the warm-up (src/soak.ts runs it).

/** What the soak is asked to do. */
export interface SoakOptions {
  readonly durationMs: number;
  readonly warmupMs: number;
  /** Target operations per second (each enqueue call, lease call, complete and fail counts one). */
  readonly rate: number;
  /** Queue depth the producers keep. */
  readonly depth: number;
  /** The dispatcher's dead-letter bound (so a short run reaches it). */
  readonly deadLetterMax: number;
  /** Largest upward trend of RSS after the warm-up, MiB per minute. @defaultValue 4 */
  readonly rssSlopeLimitMiBPerMin?: number;
  readonly outDir: string;
}

/** One sample of the dispatcher. */
export interface SoakSample {
  readonly tMs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
  readonly pending: number;
  readonly active: number;
  readonly deadLetters: number;
  readonly dataDirBytes: number;
  readonly opsTotal: number;
}

/** The verdict. */
export interface SoakSummary {
  readonly ok: boolean;
  readonly failures: string[];
  readonly opsPerSecond: number;
  readonly errors: Record<string, number>;
  readonly rssAfterWarmupMiB: number;
  readonly rssAtEndMiB: number;
  /** Least-squares slope of RSS after the warm-up. */
  readonly rssSlopeMiBPerMin: number;
  readonly externalAfterWarmupMiB: number;
  readonly externalAtEndMiB: number;
  readonly dataDirAfterWarmupMiB: number;
  readonly dataDirAtEndMiB: number;
  readonly maxDeadLetters: number;
  readonly samples: number;
}

const MiB = 1024 * 1024;

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<readonly [number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/**
 * Judges the samples. After the warm-up: RSS may not trend upward by more than `rssSlopeLimitMiBPerMin` (4 MiB a
 * minute) nor end more than 15% (+16 MiB) above where it was; external memory (bodies, buffers) may not grow by more
 * than 4 MiB; the data directory may not more than double (+16 MiB); the dead letters stay within their bound.
 */
export function judge(
  samples: readonly SoakSample[],
  options: SoakOptions,
  errors: Record<string, number>,
): SoakSummary {
  const after = samples.filter((s) => s.tMs >= options.warmupMs);
  const window = Math.max(3, Math.floor(after.length / 6));
  const head = after.slice(0, window);
  const tail = after.slice(-window);
  const rssHead = median(head.map((s) => s.rssBytes));
  const rssTail = median(tail.map((s) => s.rssBytes));
  const extHead = median(head.map((s) => s.externalBytes));
  const extTail = median(tail.map((s) => s.externalBytes));
  const dirHead = median(head.map((s) => s.dataDirBytes));
  const dirTail = median(tail.map((s) => s.dataDirBytes));
  const rssSlope = slope(after.map((s) => [s.tMs / 60_000, s.rssBytes / MiB] as const));
  const maxDead = Math.max(0, ...samples.map((s) => s.deadLetters));
  const last = samples.at(-1);
  const opsPerSecond = last ? last.opsTotal / (last.tMs / 1000) : 0;
  const failures: string[] = [];
  if (after.length < 6) failures.push(`too few samples after the warm-up (${after.length})`);
  const slopeLimit = options.rssSlopeLimitMiBPerMin ?? 4;
  if (rssSlope > slopeLimit) {
    failures.push(`RSS grows ${rssSlope.toFixed(1)} MiB/min after the warm-up (limit ${slopeLimit})`);
  }
  if (rssTail > rssHead * 1.15 + 16 * MiB) {
    failures.push(
      `RSS went from ${(rssHead / MiB).toFixed(0)} to ${(rssTail / MiB).toFixed(0)} MiB (limit +15% +16 MiB)`,
    );
  }
  if (extTail > extHead + 4 * MiB) {
    failures.push(`external memory went from ${(extHead / MiB).toFixed(1)} to ${(extTail / MiB).toFixed(1)} MiB`);
  }
  if (dirTail > dirHead * 2 + 16 * MiB) {
    failures.push(`the data directory went from ${(dirHead / MiB).toFixed(1)} to ${(dirTail / MiB).toFixed(1)} MiB`);
  }
  if (maxDead > options.deadLetterMax)
    failures.push(`${maxDead} dead letters, over the bound ${options.deadLetterMax}`);
  if (opsPerSecond < options.rate * 0.5) {
    failures.push(`the load reached only ${opsPerSecond.toFixed(0)} ops/s of ${options.rate}`);
  }
  const unexpected = Object.entries(errors).filter(([code]) => code !== ErrorCodes.resourceLease.leaseFenced);
  if (unexpected.length > 0) failures.push(`unexpected errors: ${JSON.stringify(Object.fromEntries(unexpected))}`);
  return {
    ok: failures.length === 0,
    failures,
    opsPerSecond: Math.round(opsPerSecond),
    errors,
    rssAfterWarmupMiB: +(rssHead / MiB).toFixed(1),
    rssAtEndMiB: +(rssTail / MiB).toFixed(1),
    rssSlopeMiBPerMin: +rssSlope.toFixed(2),
    externalAfterWarmupMiB: +(extHead / MiB).toFixed(1),
    externalAtEndMiB: +(extTail / MiB).toFixed(1),
    dataDirAfterWarmupMiB: +(dirHead / MiB).toFixed(1),
    dataDirAtEndMiB: +(dirTail / MiB).toFixed(1),
    maxDeadLetters: maxDead,
    samples: samples.length,
  };
}
