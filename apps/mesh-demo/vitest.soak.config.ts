import { defineConfig } from "vitest/config";

// The short soak alone, for scripts/test.mjs: it runs beside the other test files in a vitest process of its own, after
// the demo was built (so no global setup: it would build again, and the soak needs no Chromium).
export default defineConfig({
  test: {
    include: ["test/soak.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
