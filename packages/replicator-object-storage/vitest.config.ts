import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    // Two files at a time (vitest's default on a 2-core machine is one): the files mostly wait on their emulators.
    maxWorkers: 2,
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
