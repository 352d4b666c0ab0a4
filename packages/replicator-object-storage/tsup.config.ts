import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "src/index.ts",
    fs: "src/fs/index.ts",
    s3: "src/s3/index.ts",
    gcs: "src/gcs/index.ts",
    azure: "src/azure/index.ts",
  },
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  external: ["@aws-sdk/client-s3", "@google-cloud/storage", "@azure/storage-blob"],
});
