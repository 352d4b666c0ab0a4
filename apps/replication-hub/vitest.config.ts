import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Two files at a time (vitest's default on a 2-core machine is one): the drill mostly waits on its hub and node
    // processes, and the other files are short.
    maxWorkers: 2,
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
