import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    middleware: "src/middleware/index.ts",
    backpressure: "src/backpressure/index.ts",
    peers: "src/peers/index.ts",
    replication: "src/replication/index.ts",
    deterministic: "src/deterministic/index.ts",
    wire: "src/wire/index.ts",
    testing: "src/testing/index.ts",
  },
  // One copy of each module across entries, for CommonJS too: a class is the same class from any entry.
  splitting: true,
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
});
