import { defineConfig } from "tsup";

export default defineConfig({
  // The writer thread is an entry of its own: `new Worker` loads it beside index.js.
  entry: { index: "src/index.ts", "writer-thread": "src/writer-thread.ts" },
  // import.meta.url (where the writer thread's entry is) in the CommonJS build too.
  shims: true,
  format: ["esm", "cjs"],
  dts: true,
  // Maps point at the lines of src/ without carrying its text: the tarball does not ship the source twice.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false;
  },
  clean: true,
  target: "node20",
});
