import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // npm installs (better-sqlite3 compiles from source, about 100 s here) and a full build of a repository copy.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Packs every published package once (prepack builds it) for all the test files.
    globalSetup: ["test/global-setup.ts"],
  },
});
