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
  /** kill -9 the dispatcher (and start it again) this often; 0 or absent: never. */
  readonly killEveryMs?: number;
  /** When the first kill happens. @defaultValue killEveryMs */
  readonly firstKillMs?: number;
  /** Cut the worker process off this often; 0 or absent: never, and no worker process. */
  readonly partitionEveryMs?: number;
  /** How: its namespace's link down (`netns`), SIGSTOP, or `auto` (netns when `ip netns` works). @defaultValue auto */
  readonly partitionBy?: "netns" | "sigstop" | "auto";
  /** How long a partition lasts. @defaultValue 10000 */
  readonly partitionForMs?: number;
  /** The dispatcher's lease duration. @defaultValue 30000 */
  readonly leaseDurationMs?: number;
  /** A restarted dispatcher's own warm-up before its samples count. @defaultValue 30000 */
  readonly rewarmMs?: number;
  readonly outDir: string;
}

/** The end of the soak, after the final drain. */
export interface SoakFinal {
  /** Enqueues the dispatcher acknowledged. */
  readonly acknowledged: number;
  /** Acknowledged items never completed, failed for good nor dead-lettered: lost. */
  readonly lost: number;
  readonly lostSample: readonly number[];
  readonly pending: number;
  readonly active: number;
  readonly delayed: number;
  readonly deadLetters: number;
  /** Dead letters the dispatcher listed. */
  readonly deadLettersListed: number;
}

/** The faults the soak injected. */
export interface SoakFaults {
  readonly restarts: ReadonlyArray<{ readonly killedAtMs: number; readonly recoveryMs: number }>;
  readonly partitions: number;
  /** Errors of calls in flight at a kill or sent while the dispatcher restarted (not failures). */
  readonly restartErrors: Record<string, number>;
}

/** What the soak observed besides the samples. */
export interface SoakObserved {
  readonly errors: Record<string, number>;
  readonly faults?: SoakFaults;
  readonly final?: SoakFinal;
}

/** One sample of the dispatcher. */
export interface SoakSample {
  readonly tMs: number;
  /** Which dispatcher process: 1, then +1 per kill -9. */
  readonly incarnation: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly externalBytes: number;
  /** The dispatcher's active handles (sockets, servers, files) and pending timers. */
  readonly handles: number;
  readonly timers: number;
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
  /** Operations a second while a dispatcher was up (each restart's kill-to-ready time left out); under half the
   * asked `rate` fails the soak, as a load that never arrived proves nothing. */
  readonly opsPerSecond: number;
  readonly errors: Record<string, number>;
  readonly rssAfterWarmupMiB: number;
  readonly rssAtEndMiB: number;
  /** Trend of RSS after the warm-up (median pairwise slope within each process). */
  readonly rssSlopeMiBPerMin: number;
  readonly externalAfterWarmupMiB: number;
  readonly externalAtEndMiB: number;
  readonly dataDirAfterWarmupMiB: number;
  readonly dataDirAtEndMiB: number;
  readonly maxDeadLetters: number;
  readonly samples: number;
  /** Median RSS of each dispatcher process after its warm-up (the first: the soak's; later ones: `rewarm`). */
  readonly rssByIncarnationMiB: number[];
  readonly handlesAfterWarmup: number;
  readonly handlesAtEnd: number;
  readonly timersAfterWarmup: number;
  readonly timersAtEnd: number;
  readonly restarts: SoakFaults["restarts"];
  readonly partitions: number;
  /** How the worker was cut off (absent without partitions). */
  readonly partitionBy?: "netns" | "sigstop";
  readonly restartErrors: Record<string, number>;
  readonly final?: SoakFinal;
}

/** Fewest samples of one process after its warm-up for its RSS trend to count (a shorter one is noise). */
const MIN_TREND_SAMPLES = 30;

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

/** Samples after the warm-up, per process: the soak's for the first, `rewarmMs` after its start for a restarted one. */
function settled(samples: readonly SoakSample[], options: SoakOptions): SoakSample[][] {
  const byIncarnation = new Map<number, SoakSample[]>();
  for (const s of samples) {
    if (s.rssBytes === 0) continue; // sampled just as the process died
    byIncarnation.set(s.incarnation, [...(byIncarnation.get(s.incarnation) ?? []), s]);
  }
  return [...byIncarnation.entries()]
    .sort(([a], [b]) => a - b)
    .map(([incarnation, list]) => {
      const from =
        incarnation === 1
          ? options.warmupMs
          : Math.max(options.warmupMs, (list[0]?.tMs ?? 0) + (options.rewarmMs ?? 30_000));
      return list.filter((s) => s.tMs >= from);
    });
}

/**
 * The trend of RSS: the median of the slopes between every two samples of the same process (Theil–Sen), over the
 * processes' segments of at least {@link MIN_TREND_SAMPLES} samples. A restart's drop is not a trend (pairs never span
 * two processes), and neither is a transient spike — the retention job deleting a minute of records lifts RSS by tens
 * of MiB for a few seconds, which tilts a least-squares line at the end of a short run — while a steady growth is.
 */
function pooledSlope(segments: ReadonlyArray<ReadonlyArray<readonly [number, number]>>): number {
  const slopes: number[] = [];
  for (const points of segments) {
    if (points.length < MIN_TREND_SAMPLES) continue;
    for (let i = 0; i < points.length; i++) {
      for (let j = i + 1; j < points.length; j++) {
        const dx = points[j]![0] - points[i]![0];
        if (dx > 0) slopes.push((points[j]![1] - points[i]![1]) / dx);
      }
    }
  }
  return median(slopes);
}

/**
 * Judges the samples. After the warm-up (per dispatcher process: a restarted one after `rewarmMs`): RSS may not
 * trend upward by more than `rssSlopeLimitMiBPerMin` (4 MiB a minute; within each process, pooled, robust to
 * transient spikes) nor end more than
 * 15% (+16 MiB) above where it was; a restarted process's RSS stays within 10% of the first one's; external memory
 * (bodies, buffers) may not grow by more than 4 MiB, nor active handles or timers by more than 20; the data directory
 * may not more than double (+16 MiB); the dead letters stay within their bound. With faults: at least one restart
 * when kills were asked for and one partition when partitions were; no acknowledged item lost; the queue empty after
 * the final drain with as many dead letters listed as counted.
 */
export function judge(samples: readonly SoakSample[], options: SoakOptions, observed: SoakObserved): SoakSummary {
  const { errors, faults, final } = observed;
  const segments = settled(samples, options).filter((segment) => segment.length > 0);
  const first = segments[0] ?? [];
  const last = segments.at(-1) ?? [];
  const window = (list: SoakSample[]) => Math.max(3, Math.floor(list.length / 6));
  const head = first.slice(0, window(first));
  const tail = last.slice(-window(last));
  const at = (list: SoakSample[], key: keyof SoakSample) => median(list.map((s) => s[key]));
  const [rssHead, rssTail] = [at(head, "rssBytes"), at(tail, "rssBytes")];
  const [extHead, extTail] = [at(head, "externalBytes"), at(tail, "externalBytes")];
  const [dirHead, dirTail] = [at(head, "dataDirBytes"), at(tail, "dataDirBytes")];
  const [handlesHead, handlesTail] = [at(head, "handles"), at(tail, "handles")];
  const [timersHead, timersTail] = [at(head, "timers"), at(tail, "timers")];
  const rssByIncarnation = segments.map((segment) => at(segment, "rssBytes"));
  const rssSlope = pooledSlope(segments.map((seg) => seg.map((s) => [s.tMs / 60_000, s.rssBytes / MiB] as const)));
  const maxDead = Math.max(0, ...samples.map((s) => s.deadLetters));
  const lastSample = samples.at(-1);
  // The load's rate while a dispatcher was there to take it: a restart's recovery (kill to ready) is not load time.
  const downMs = (faults?.restarts ?? [])
    .filter((r) => lastSample && r.killedAtMs < lastSample.tMs)
    .reduce((sum, r) => sum + r.recoveryMs, 0);
  const upMs = lastSample ? Math.max(1, lastSample.tMs - downMs) : 0;
  const opsPerSecond = lastSample ? lastSample.opsTotal / (upMs / 1000) : 0;
  const failures: string[] = [];
  const after = segments.reduce((n, seg) => n + seg.length, 0);
  if (after < 6) failures.push(`too few samples after the warm-up (${after})`);
  const slopeLimit = options.rssSlopeLimitMiBPerMin ?? 4;
  if (rssSlope > slopeLimit) {
    failures.push(`RSS grows ${rssSlope.toFixed(1)} MiB/min after the warm-up (limit ${slopeLimit})`);
  }
  if (rssTail > rssHead * 1.15 + 16 * MiB) {
    failures.push(
      `RSS went from ${(rssHead / MiB).toFixed(0)} to ${(rssTail / MiB).toFixed(0)} MiB (limit +15% +16 MiB)`,
    );
  }
  rssByIncarnation.slice(1).forEach((rss, i) => {
    if (rss > rssByIncarnation[0]! * 1.1) {
      failures.push(
        `RSS after restart ${i + 1} is ${(rss / MiB).toFixed(0)} MiB, over the first process's ${(rssByIncarnation[0]! / MiB).toFixed(0)} MiB + 10%`,
      );
    }
  });
  if (extTail > extHead + 4 * MiB) {
    failures.push(`external memory went from ${(extHead / MiB).toFixed(1)} to ${(extTail / MiB).toFixed(1)} MiB`);
  }
  if (handlesTail > handlesHead + 20) failures.push(`active handles went from ${handlesHead} to ${handlesTail}`);
  if (timersTail > timersHead + 20) failures.push(`active timers went from ${timersHead} to ${timersTail}`);
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
  failures.push(...faultFailures(options, faults, final));
  return {
    ok: failures.length === 0,
    failures,
    opsPerSecond: Math.round(opsPerSecond),
    errors,
    rssAfterWarmupMiB: mib(rssHead),
    rssAtEndMiB: mib(rssTail),
    rssSlopeMiBPerMin: +rssSlope.toFixed(2),
    externalAfterWarmupMiB: mib(extHead),
    externalAtEndMiB: mib(extTail),
    dataDirAfterWarmupMiB: mib(dirHead),
    dataDirAtEndMiB: mib(dirTail),
    maxDeadLetters: maxDead,
    samples: samples.length,
    rssByIncarnationMiB: rssByIncarnation.map(mib),
    handlesAfterWarmup: handlesHead,
    handlesAtEnd: handlesTail,
    timersAfterWarmup: timersHead,
    timersAtEnd: timersTail,
    restarts: faults?.restarts ?? [],
    partitions: faults?.partitions ?? 0,
    restartErrors: faults?.restartErrors ?? {},
    ...(final ? { final } : {}),
  };
}

const mib = (bytes: number) => +(bytes / MiB).toFixed(1);

function faultFailures(options: SoakOptions, faults: SoakFaults | undefined, final: SoakFinal | undefined): string[] {
  const failures: string[] = [];
  const firstKill = options.firstKillMs ?? options.killEveryMs ?? 0;
  if (options.killEveryMs && firstKill < options.durationMs && (faults?.restarts.length ?? 0) === 0)
    failures.push("the dispatcher was never killed");
  if (options.partitionEveryMs && options.partitionEveryMs < options.durationMs && (faults?.partitions ?? 0) === 0)
    failures.push("the worker was never partitioned");
  if (!final) return [...failures, "the final drain did not run"];
  if (final.lost > 0)
    failures.push(`${final.lost} acknowledged items lost (e.g. soak-${final.lostSample.join(", soak-")})`);
  if (final.pending + final.active + final.delayed > 0)
    failures.push(`after the final drain: ${final.pending} pending, ${final.active} active, ${final.delayed} delayed`);
  if (final.deadLetters !== final.deadLettersListed)
    failures.push(`stats count ${final.deadLetters} dead letters, the list holds ${final.deadLettersListed}`);
  return failures;
}
