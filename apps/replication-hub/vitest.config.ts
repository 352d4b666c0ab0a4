import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One module graph per worker, not one per test file: re-importing for every file was a third of a suite's CPU
    // (core: 84-97 s -> 53-54 s, alternated). The files share no module state: no module mocks, no stubbed globals.
    isolate: false,
    // Two files at a time (vitest's default on a 2-core machine is one): the drill mostly waits on its hub and node
    // processes, and the other files are short.
    maxWorkers: 2,
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
