import { defineConfig, type Options } from "tsup";

const common: Options = {
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
  dts: true,
  // Maps point at the lines of src/ without carrying its text: the tarball does not ship the source twice.
  sourcemap: true,
  esbuildOptions(options, { format }) {
    options.sourcesContent = false;
    // tsup turns the split ESM chunks into CommonJS with sucrase, which mangles some class fields (jose's errors
    // became a syntax error); esbuild lowers them first, with the same define semantics.
    if (format === "cjs")
      options.supported = { ...options.supported, "class-field": false, "class-static-field": false };
  },
  target: "node20",
};

// Two builds so each cleans only its own files (they run side by side). jose is ESM-only: `require("jose")` throws
// ERR_REQUIRE_ESM on Node 21 and 22.0–22.11, which `engines` allows, so the CommonJS build carries its own copy.
export default defineConfig([
  { ...common, format: ["esm"], clean: ["**/*.js", "**/*.js.map", "**/*.d.ts"] },
  // The declarations are the same for both formats: only the ESM build runs the type checker over them (a pass of
  // 25-30 s on the build's critical path), and scripts/cjs-declarations.mjs writes each dist/*.d.ts as a .d.cts.
  {
    ...common,
    format: ["cjs"],
    dts: false,
    clean: ["**/*.cjs", "**/*.cjs.map", "**/*.d.cts"],
    noExternal: ["jose"],
  },
]);
