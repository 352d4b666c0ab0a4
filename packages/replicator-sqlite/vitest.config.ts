import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One module graph per worker, not one per test file: re-importing for every file was a third of a suite's CPU
    // (core: 84-97 s -> 53-54 s, alternated). The files share no module state: no module mocks, no stubbed globals.
    isolate: false,
    // Three files at a time on this 2-core machine (vitest's default is one): the drills mostly wait on their child
    // processes, fsyncs and wall-clock slots (the schedule drill waits ~35 s for its 10 s slots). One at a time the
    // suite took 321 s, two 153 s; three 135–137 s against 154–164 s for two (2026-12-04, twice each, all passing).
    maxWorkers: 3,
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
