import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // One module graph per worker, not one per test file: re-importing for every file was a third of a suite's CPU
    // (core: 84-97 s -> 53-54 s, alternated). The files share no module state: no module mocks, no stubbed globals.
    isolate: false,
    // Two files at a time: vitest defaults to one on this 2-core CI machine (cores - 1), and these files mostly wait
    // (child processes, sockets, compilers) or are independent unit tests.
    maxWorkers: 2,
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
