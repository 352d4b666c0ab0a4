import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The tests run the built CLI (dist/main.js) as a user would; build it first.
    globalSetup: ["test/global-setup.ts"],
  },
});
