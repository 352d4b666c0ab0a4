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
  // Maps point at the lines of src/ without carrying its text: the tarball does not ship the source twice.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  clean: true,
  target: "node20",
  external: ["@aws-sdk/client-s3", "@google-cloud/storage", "@azure/storage-blob"],
});
