import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { publint } from "publint";
import { formatMessage } from "publint/utils";
import { afterAll, describe, expect, inject, it } from "vitest";
import { publishedPackages, repoRoot, run } from "./helpers.js";

// Every published tarball, as npm would get it: built, documented, licensed, described, and clean by publint and
// "are the types wrong". attw runs with --profile node16: the node10 profile (TypeScript's old `moduleResolution:
// node`) cannot see subpath exports such as `@omnirelay/core/middleware` at all, and engines already require Node 20.

const packages = publishedPackages();
const rootLicense = readFileSync(join(repoRoot, "LICENSE"), "utf8");
// The repository and bug tracker every package names are the root package.json's.
const rootManifest = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8"));
const scratch = mkdtempSync(join(tmpdir(), "omnirelay-unpacked-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => statSync(join(dir, f)).isFile())
    .map((f) => f.split("\\").join("/"))
    .sort();
}

/** Every string leaf of an `exports` / `bin` value. */
function targets(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (value && typeof value === "object") return Object.values(value).flatMap(targets);
  return [];
}

it("the published set is the one the release docs name", () => {
  // The table at the top of docs/releasing.md: | `@omnirelay/name` (…) | folder |
  const doc = readFileSync(join(repoRoot, "docs/releasing.md"), "utf8");
  const named = [...doc.matchAll(/^\| `(@omnirelay\/[a-z-]+)`[^|]*\| ([a-z/-]+) \|$/gm)].map((m) => ({
    name: m[1],
    dir: m[2],
  }));
  expect(named.length).toBeGreaterThan(0);
  expect([...named].sort((a, b) => a.name!.localeCompare(b.name!))).toEqual(
    packages.map(({ name, dir }) => ({ name, dir })),
  );
  const config = JSON.parse(readFileSync(join(repoRoot, ".changeset/config.json"), "utf8"));
  expect([...config.fixed[0]].sort()).toEqual(packages.map((p) => p.name));
});

describe.each(packages)("$name", ({ name, dir }) => {
  const unpacked = join(scratch, name.replace("/", "+"));

  it("holds dist, README.md and the root LICENSE; its package.json is complete and has no workspace: range", async () => {
    const tarball = inject("tarballs")[name]!;
    await run("mkdir", ["-p", unpacked], { cwd: scratch });
    await run("tar", ["-xzf", tarball, "-C", unpacked], { cwd: scratch });
    const pkgDir = join(unpacked, "package");
    const files = listFiles(pkgDir);
    expect(files.filter((f) => f.startsWith("dist/")).length).toBeGreaterThan(0);
    expect(files).toContain("README.md");
    expect(readFileSync(join(pkgDir, "README.md"), "utf8").trim().length).toBeGreaterThan(0);
    expect(readFileSync(join(pkgDir, "LICENSE"), "utf8")).toBe(rootLicense);
    expect(files.filter((f) => /^(src|test)\//.test(f))).toEqual([]);

    const text = readFileSync(join(pkgDir, "package.json"), "utf8");
    expect(text).not.toContain("workspace:");
    const m = JSON.parse(text);
    expect(m.name).toBe(name);
    expect(m.private).toBeUndefined();
    expect(m.license).toBe("MIT");
    expect(m.description.length).toBeGreaterThan(20);
    expect(m.keywords.length).toBeGreaterThan(2);
    expect(m.repository).toEqual({ ...rootManifest.repository, directory: dir });
    expect(m.homepage).toBe(`${rootManifest.repository.url.replace(/^git\+|\.git$/g, "")}/tree/main/${dir}#readme`);
    expect(m.bugs).toEqual(rootManifest.bugs);
    expect(m.engines.node).toBe(">=20.19");
    expect(m.files).toEqual(expect.arrayContaining(["dist", "README.md", "LICENSE"]));
    // Runtime dependencies are ranges, so users get patches and one shared copy.
    for (const [dep, range] of Object.entries<string>(m.dependencies ?? {})) {
      expect(range, `${name} -> ${dep}`).toMatch(/^[\^~>]/);
    }
    // Core is a peer of everything that uses it (one core per process), never a dependency.
    if (name !== "@omnirelay/core") {
      expect(m.dependencies?.["@omnirelay/core"]).toBeUndefined();
      expect(m.peerDependencies?.["@omnirelay/core"]).toBe(">=0.1.0 <1");
    }
    // Every entry point the manifest names is in the tarball.
    for (const target of [...targets(m.exports), ...targets(m.bin), m.main, m.module, m.types].filter(Boolean)) {
      expect(existsSync(join(pkgDir, target)), `${name}: ${target}`).toBe(true);
    }
    // Source maps point at src/ without carrying it.
    for (const map of files.filter((f) => f.endsWith(".map"))) {
      expect(JSON.parse(readFileSync(join(pkgDir, map), "utf8")).sourcesContent, map).toBeUndefined();
    }
  });

  it("publint finds nothing, not even a suggestion", async () => {
    const buf = readFileSync(inject("tarballs")[name]!);
    const tarball = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    const result = await publint({ pack: { tarball }, level: "suggestion" });
    expect(result.messages.map((msg) => `${msg.type}: ${formatMessage(msg, result.pkg)}`)).toEqual([]);
  });

  it("are-the-types-wrong (node16 CJS and ESM, bundler) passes", async () => {
    const attw = join(repoRoot, "tools/packaging/node_modules/.bin/attw");
    const r = await run(attw, [inject("tarballs")[name]!, "--profile", "node16", "--format", "ascii"], {
      cwd: scratch,
      allowFailure: true,
    });
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  });
});
