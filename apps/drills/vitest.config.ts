import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 40_000,
    hookTimeout: 30_000,
    // Every file runs a small mesh of processes; side by side on two cores the drills' timings would be flaky.
    fileParallelism: false,
  },
});
