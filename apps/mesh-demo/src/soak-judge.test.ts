import { describe, expect, it } from "vitest";
import { judge, type SoakOptions, type SoakSample } from "./soak-judge.js";

const options: SoakOptions = { durationMs: 90_000, warmupMs: 0, rate: 500, depth: 100, deadLetterMax: 10, outDir: "" };
const final = {
  acknowledged: 1,
  lost: 0,
  lostSample: [],
  pending: 0,
  active: 0,
  delayed: 0,
  deadLetters: 0,
  deadLettersListed: 0,
};

/** Flat samples, one a second, with `opsTotal` growing to `ops` at 90 s. */
function samples(ops: number): SoakSample[] {
  return Array.from({ length: 91 }, (_, i) => ({
    tMs: i * 1000,
    incarnation: 1,
    rssBytes: 100e6,
    heapUsedBytes: 1,
    externalBytes: 1,
    handles: 1,
    timers: 1,
    pending: 0,
    active: 0,
    deadLetters: 0,
    dataDirBytes: 1,
    opsTotal: Math.round((ops * i) / 90),
  }));
}

/** The verdict on {@link samples} of `ops` operations, with these restarts (none: no faults reported). */
function judgeOps(ops: number, restarts?: { killedAtMs: number; recoveryMs: number }[]) {
  const faults = restarts ? { restarts, partitions: 0, restartErrors: {} } : undefined;
  return judge(samples(ops), options, { errors: {}, final, ...(faults ? { faults } : {}) });
}

describe("the soak's load rate", () => {
  it("is counted over the time a dispatcher was up: a restart's recovery is not load time", () => {
    // 22,140 operations in 90 s is 246 a second, under half of 500; with 3 s of those 90 down it is 254.5.
    const up = judgeOps(22_140, [{ killedAtMs: 10_000, recoveryMs: 3_000 }]);
    expect(up.opsPerSecond).toBe(254);
    expect(up.failures).toEqual([]);
    const never = judgeOps(22_140);
    expect(never.opsPerSecond).toBe(246);
    expect(never.failures).toEqual(["the load reached only 246 ops/s of 500"]);
  });

  it("leaves out only restarts that began before the last sample", () => {
    const late = judgeOps(22_140, [{ killedAtMs: 95_000, recoveryMs: 3_000 }]);
    expect(late.opsPerSecond).toBe(246);
  });
});
