import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Two files at a time (vitest's default on this 2-core machine is one): the drills mostly wait on their child
    // processes and fsyncs; the whole suite 321 s → 153 s.
    maxWorkers: 2,
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
