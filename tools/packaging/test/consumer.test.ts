import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { heavyPackages, installEnv, installedPackages, offerWorkspaceSqliteAddon, repoRoot, run } from "./helpers.js";

// A user's project outside the workspace: npm installs only the core and replicator-sqlite tarballs (and @types/node
// for the type checks), then an ESM and a CommonJS program run the whole loop, and TypeScript checks a typed program.
// better-sqlite3's addon comes as a prebuilt binary, as it does for a user online (the one the workspace compiled,
// when npm resolves the same version).

const fixtures = join(repoRoot, "tools/packaging/test/fixtures/consumer");
const tsc = join(repoRoot, "node_modules/typescript/bin/tsc");
let project: string;

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), "omnirelay-consumer-"));
  // npm 11 asks each project to allow a dependency's install script: better-sqlite3 fetches or compiles its addon in one.
  const manifest = { name: "consumer", version: "1.0.0", private: true, allowScripts: { "better-sqlite3": true } };
  writeFileSync(join(project, "package.json"), JSON.stringify(manifest));
  await offerWorkspaceSqliteAddon(project);
  const tarballs = inject("tarballs");
  await run(
    "npm",
    ["install", tarballs["@omnirelay/core"]!, tarballs["@omnirelay/replicator-sqlite"]!, "@types/node@^20.19.0"],
    { cwd: project, env: installEnv },
  );
  for (const file of ["loop.cjs", "program.mjs", "program.cjs"]) {
    writeFileSync(join(project, file), readFileSync(join(fixtures, file)));
  }
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

it("the project is outside the workspace, and only core + replicator-sqlite (no gRPC, cloud SDK, prom-client) came", () => {
  expect(project.startsWith(repoRoot)).toBe(false);
  const installed = installedPackages(join(project, "node_modules"));
  expect(installed.filter((n) => n.startsWith("@omnirelay/")).sort()).toEqual([
    "@omnirelay/core",
    "@omnirelay/replicator-sqlite",
  ]);
  expect(installed).toContain("better-sqlite3");
  expect(installed).toContain("jose");
  expect(installed.filter((n) => heavyPackages.test(n))).toEqual([]);
});

describe.each([
  { kind: "ESM", file: "program.mjs", flags: [] as string[] },
  { kind: "CommonJS", file: "program.cjs", flags: [] as string[] },
  // Node 21 and 22.0–22.11 (which engines allow) cannot require() an ES module; this flag makes Node 20 behave alike,
  // so core's CommonJS build must not require jose (ESM-only).
  { kind: "CommonJS without require(esm)", file: "program.cjs", flags: ["--no-experimental-require-module"] },
])("the $kind program", ({ file, flags }) => {
  it("authenticates, enqueues 10, a worker completes some, and the reopened SQLite log keeps the counts", async () => {
    const logPath = join(project, `${file}-${flags.length}.db`);
    const r = await run("node", [...flags, file, logPath], { cwd: project });
    const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    expect(result.refused).toBe("omnirelay.auth.invalid_token");
    expect(result.completed).toBeGreaterThanOrEqual(4);
    expect(result.completed).toBeLessThan(10);
    expect(result.before).toEqual({ pending: 10 - result.completed, active: 0, last: expect.any(Number) });
    expect(result.after).toEqual(result.before);
    expect(result.replayed).toBe(result.before.last);
  });
});

describe.each([
  { name: "node16, an ES module project", type: "module", options: { module: "node16", moduleResolution: "node16" } },
  { name: "node16, a CommonJS project", type: "commonjs", options: { module: "node16", moduleResolution: "node16" } },
  { name: "bundler", type: "module", options: { module: "esnext", moduleResolution: "bundler" } },
])("TypeScript, $name", ({ name, type, options }) => {
  it("type-checks a program using core, its middleware subpath and replicator-sqlite", async () => {
    const dir = join(project, `ts-${name.replace(/\W+/g, "-")}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "typed", private: true, type }));
    writeFileSync(join(dir, "typed.ts"), readFileSync(join(fixtures, "typed.ts")));
    const compilerOptions = { ...options, target: "es2022", strict: true, noEmit: true, types: ["node"] };
    writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["typed.ts"] }));
    const r = await run("node", [tsc, "-p", dir], { cwd: dir, allowFailure: true });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});
