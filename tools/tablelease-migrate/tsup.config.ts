import { defineConfig } from "tsup";

export default defineConfig({
  entry: ["src/index.ts", "src/codemod-cli.ts", "src/lint-cli.ts"],
  format: ["esm"],
  dts: { entry: "src/index.ts" },
  sourcemap: false,
  clean: true,
  target: "node20",
});
