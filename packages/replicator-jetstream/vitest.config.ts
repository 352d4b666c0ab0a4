import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The failover test runs an owner node in a child process from the built dist/; build it first.
    globalSetup: ["test/global-setup.ts"],
  },
});
