import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { defineConfig } from "tsup";

// The SQLite log's writer thread is a file of its own that the log starts beside its module (README of
// @omnirelay/replicator-sqlite, "Bundling"): bundled, it must sit beside main.js.
const sqlitePackage = dirname(createRequire(import.meta.url).resolve("@omnirelay/replicator-sqlite/package.json"));

// The container's single-file bundle (deploy/Dockerfile): OmniRelay's packages, pino and prom-client inlined;
// better-sqlite3 (a native addon), the gRPC transport (loaded only for --transport grpc) and the JetStream log
// (loaded only for --log jetstream://) stay outside.
export default defineConfig({
  entry: { main: "src/main.ts", "writer-thread": join(sqlitePackage, "dist/writer-thread.js") },
  format: ["esm"],
  platform: "node",
  target: "node20",
  outDir: process.env.BUNDLE_OUT_DIR ?? "/out",
  splitting: false,
  clean: true,
  // pino and prom-client are CommonJS: give the bundle a require() for the Node built-ins they load.
  banner: {
    js: 'import { createRequire as __omniCreateRequire } from "node:module"; const require = __omniCreateRequire(import.meta.url);',
  },
  noExternal: [/^@omnirelay\/(?!transport-grpc|replicator-jetstream)/, "pino", "prom-client"],
  external: [
    "better-sqlite3",
    "@omnirelay/transport-grpc",
    "@grpc/grpc-js",
    "@omnirelay/replicator-jetstream",
    /^@nats-io\//,
  ],
});
