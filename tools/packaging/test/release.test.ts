import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { installEnv, publishedPackages, repoRoot, run } from "./helpers.js";

// docs/releasing.md's release block, run as written on a throwaway copy of this checkout (committed as `main` of a
// fresh repository), then what it made: one new version everywhere, changelogs, consumed changesets, tarballs that
// hold dist + README + LICENSE with no workspace: range, and a dry-run publish of exactly the published packages.

const bumps = ["patch", "minor", "major"] as const;
let scratch: string;
let copy: string;
let blockOutput: string;
let expected: string;

/** The first ```bash block after the "## Cut a release" heading. */
function releaseBlock(): string {
  const doc = readFileSync(join(repoRoot, "docs/releasing.md"), "utf8");
  const section = doc.slice(doc.indexOf("## Cut a release"));
  const m = /```bash\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error("docs/releasing.md has no bash block under '## Cut a release'");
  return m[1]!;
}

/** The version every published package must reach: the current one raised by the largest pending bump. */
function expectedVersion(): string {
  const published = new Set(publishedPackages().map((p) => p.name));
  let largest = -1;
  for (const f of readdirSync(join(repoRoot, ".changeset")).filter((n) => n.endsWith(".md") && n !== "README.md")) {
    const front = readFileSync(join(repoRoot, ".changeset", f), "utf8").split("---")[1] ?? "";
    for (const [, name, bump] of front.matchAll(/"([^"]+)":\s*(patch|minor|major)/g)) {
      if (published.has(name!)) largest = Math.max(largest, bumps.indexOf(bump as (typeof bumps)[number]));
    }
  }
  const [major, minor, patch] = JSON.parse(readFileSync(join(repoRoot, "packages/core/package.json"), "utf8"))
    .version.split(".")
    .map(Number);
  if (largest === 2) return `${major + 1}.0.0`;
  if (largest === 1) return `${major}.${minor + 1}.0`;
  if (largest === 0) return `${major}.${minor}.${patch + 1}`;
  throw new Error("no pending changeset names a published package");
}

beforeAll(async () => {
  expected = expectedVersion();
  scratch = mkdtempSync(join(tmpdir(), "omnirelay-release-"));
  copy = join(scratch, "repo");
  // The checkout as it is (committed or not), without ignored files (node_modules, dist, caches).
  const files = (await run("git", ["ls-files", "-co", "--exclude-standard", "-z"], { cwd: repoRoot })).stdout
    .split("\0")
    .filter(Boolean);
  for (const f of files.filter((name) => existsSync(join(repoRoot, name)))) {
    mkdirSync(dirname(join(copy, f)), { recursive: true });
    copyFileSync(join(repoRoot, f), join(copy, f));
  }
  const git = (...args: string[]) => run("git", args, { cwd: copy });
  await git("init", "-q", "-b", "main");
  await git("config", "user.email", "release-test@example.invalid");
  await git("config", "user.name", "release test");
  await git("add", "-A");
  await git("commit", "-q", "-m", "snapshot");
  writeFileSync(join(scratch, "release.sh"), `set -euo pipefail\nset -x\n${releaseBlock()}`);
  const r = await run("bash", [join(scratch, "release.sh")], { cwd: copy, env: installEnv });
  blockOutput = r.stdout + r.stderr;
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

it("changeset version moves every published package to one new version, with changelogs; private ones stay", () => {
  for (const { name, dir } of publishedPackages(copy)) {
    const manifest = JSON.parse(readFileSync(join(copy, dir, "package.json"), "utf8"));
    expect(manifest.version, name).toBe(expected);
    expect(readFileSync(join(copy, dir, "CHANGELOG.md"), "utf8")).toContain(`## ${expected}`);
  }
  for (const dir of ["apps/example", "apps/mesh-demo", "tools/bench", "tools/packaging"]) {
    expect(JSON.parse(readFileSync(join(copy, dir, "package.json"), "utf8")).version, dir).toBe("0.0.0");
  }
  // Every changeset naming a published package was consumed.
  const published = publishedPackages(copy).map((p) => p.name);
  for (const f of readdirSync(join(copy, ".changeset")).filter((n) => n.endsWith(".md"))) {
    const text = readFileSync(join(copy, ".changeset", f), "utf8");
    expect(
      published.filter((n) => text.includes(`"${n}"`)),
      f,
    ).toEqual([]);
  }
});

it("the packed tarballs carry the new version, dist, README and LICENSE, and no workspace: range", async () => {
  const out = join(scratch, "omnirelay-release");
  const tarballs = readdirSync(out).sort();
  expect(tarballs).toEqual(
    publishedPackages(copy)
      .map((p) => `${p.name.replace("@", "").replace("/", "-")}-${expected}.tgz`)
      .sort(),
  );
  for (const t of tarballs) {
    const list = (await run("tar", ["-tzf", join(out, t)], { cwd: out })).stdout.split("\n");
    expect(list, t).toEqual(expect.arrayContaining(["package/README.md", "package/LICENSE", "package/package.json"]));
    expect(
      list.some((f) => f.startsWith("package/dist/")),
      t,
    ).toBe(true);
    const manifest = (await run("tar", ["-xzOf", join(out, t), "package/package.json"], { cwd: out })).stdout;
    expect(manifest, t).not.toContain("workspace:");
    const m = JSON.parse(manifest);
    expect(m.version).toBe(expected);
    // Internal dependencies point at the release itself.
    for (const [dep, range] of Object.entries<string>(m.dependencies ?? {})) {
      if (dep.startsWith("@omnirelay/")) expect(range, `${t} -> ${dep}`).toBe(`^${expected}`);
    }
  }
});

it("publish -r --dry-run goes through exactly the published packages at the new version", () => {
  const announced = [...blockOutput.matchAll(/📦 (@omnirelay\/[a-z-]+)@(\S+)/g)].map((m) => `${m[1]}@${m[2]}`);
  expect(announced.sort()).toEqual(publishedPackages(copy).map((p) => `${p.name}@${expected}`));
  expect(blockOutput).not.toMatch(/@omnirelay\/(example|mesh-demo|bench|packaging)@/);
});

it("changeset tag then tags each published package at the new version", async () => {
  await run("pnpm", ["changeset", "tag"], { cwd: copy, env: installEnv });
  const tags = (await run("git", ["tag", "--list"], { cwd: copy })).stdout.trim().split("\n").sort();
  expect(tags).toEqual(publishedPackages(copy).map((p) => `${p.name}@${expected}`));
});
