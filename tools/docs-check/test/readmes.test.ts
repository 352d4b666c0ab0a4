import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ResourceLeaseQueue } from "@omnirelay/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fencedBlocks, npmInstalls, publishedPackages, readRepoFile, repoRoot, runProcess } from "../src/readme.js";
import { commandShims } from "../src/servers.js";

interface Manifest {
  name: string;
  bin?: Record<string, string>;
  engines?: { node?: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  private?: boolean;
}

const manifest = (dir: string) => JSON.parse(readRepoFile(`${dir}/package.json`)) as Manifest;
const byName = new Map(publishedPackages.map((p) => [p.name, p]));
const readmes = ["README.md", ...publishedPackages.map((p) => `${p.dir}/README.md`)];

/** GitHub's anchor of a heading. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");

describe("package READMEs", () => {
  it.each(publishedPackages.map((p) => [p.name, p]))("%s has a README titled with its npm name", (_n, pkg) => {
    const path = join(repoRoot, pkg.dir, "README.md");
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path, "utf8").split("\n")[0]).toBe(`# ${pkg.name}`);
    const m = manifest(pkg.dir);
    // The hub's folder keeps its old name until it is published; once it is, the names must agree.
    if (!m.private) expect(m.name).toBe(pkg.name);
    if (pkg.bin) expect(Object.keys(m.bin ?? {})).toContain(pkg.bin);
  });

  it.each(publishedPackages.map((p) => [p.name, p]))("%s states the Node.js range its engines field has", (_n, pkg) => {
    const text = readRepoFile(`${pkg.dir}/README.md`);
    const stated = /Node\.js `([^`]+)`/.exec(text)?.[1];
    expect(stated, "a `Node.js `<range>`` statement").toBeDefined();
    const range = manifest(pkg.dir).engines?.node;
    if (range !== undefined) expect(stated).toBe(range);
  });

  it.each(publishedPackages.map((p) => [p.name, p]))(
    "%s shows how to install it, with core beside an adapter",
    (_n, pkg) => {
      const lines = npmInstalls(readRepoFile(`${pkg.dir}/README.md`)).filter((args) => args.includes(pkg.name));
      expect(lines.length).toBeGreaterThan(0);
      const m = manifest(pkg.dir);
      const usesCore = Boolean(m.dependencies?.["@omnirelay/core"] ?? m.peerDependencies?.["@omnirelay/core"]);
      // A library that plugs into core is installed with it (core is its peer); a command brings its own.
      if (usesCore && !pkg.bin) for (const args of lines) expect(args).toContain("@omnirelay/core");
    },
  );
});

describe("examples", () => {
  it.each(readmes)("%s keeps each example within 15 lines of code", (readme) => {
    for (const block of fencedBlocks(readRepoFile(readme)).filter((b) => b.tags.includes("example"))) {
      const code = block.body.split("\n").filter((l) => l.trim() !== "" && !/^\s*(\/\/|#) prints:/.test(l));
      expect(code.length, `${readme}:${block.line}`).toBeLessThanOrEqual(15);
    }
  });
});

describe("npm install lines", () => {
  const lines = readmes.flatMap((readme) => npmInstalls(readRepoFile(readme)).map((args) => ({ readme, args })));

  it("are there: the root README's common setups and every package's", () => {
    expect(lines.filter((l) => l.readme === "README.md").length).toBeGreaterThanOrEqual(6);
  });

  it.each(lines.map((l) => [`${l.readme}: npm install ${l.args.join(" ")}`, l]))(
    "%s names real packages and declared peers",
    (_title, { args }) => {
      const flags = args.filter((a) => a.startsWith("-"));
      const packages = args.filter((a) => !a.startsWith("-"));
      expect(packages.length).toBeGreaterThan(0);
      if (flags.includes("-D")) {
        // Development dependencies a user adds: Node's types for TypeScript.
        expect(packages).toEqual(["@types/node"]);
        return;
      }
      const ours = packages.filter((n) => byName.has(n));
      for (const name of packages.filter((n) => !byName.has(n))) {
        // Anything else must be a peer (or dependency) of one of ours on the same line.
        const declared = ours.some((o) => {
          const m = manifest(byName.get(o)!.dir);
          return name in (m.peerDependencies ?? {}) || name in (m.dependencies ?? {});
        });
        expect(declared, `${name} is declared by one of ${ours.join(", ")}`).toBe(true);
      }
      // A global install is for commands only.
      if (flags.includes("-g")) for (const n of ours) expect(byName.get(n)!.bin, `${n} has a command`).toBeDefined();
      expect(
        flags.every((f) => f === "-g" || f === "-D"),
        `flags ${flags.join(" ")}`,
      ).toBe(true);
    },
  );
});

describe("links", () => {
  it.each(readmes)("every relative link of %s leads to a file (and heading) of the repository", (readme) => {
    const text = readRepoFile(readme).replace(/```[\s\S]*?```/g, "");
    const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
    expect(links.length).toBeGreaterThan(0);
    for (const link of links) {
      const [path, anchor] = link.split("#") as [string, string | undefined];
      const target = path === "" ? join(repoRoot, readme) : join(repoRoot, dirname(readme), path);
      expect(existsSync(target), `${readme} → ${link}`).toBe(true);
      if (anchor === undefined) continue;
      const file = target.endsWith(".md") ? target : join(target, "README.md");
      const headings = readFileSync(file, "utf8")
        .replace(/```[\s\S]*?```/g, "")
        .split("\n")
        .filter((l) => l.startsWith("#"))
        .map((l) => slug(l.replace(/^#+/, "")));
      expect(headings, `${readme} → ${link}`).toContain(anchor);
    }
  });

  it("link to the docs the way the root README does (relative paths into docs/)", () => {
    for (const pkg of publishedPackages) {
      expect(readRepoFile(`${pkg.dir}/README.md`), pkg.name).toMatch(/\]\(\.\.\/\.\.\/docs\/[a-z/-]+\.md/);
    }
  });
});

describe("stated defaults", () => {
  let work: string;
  let bin: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "omnirelay-readme-defaults-"));
    bin = commandShims(join(work, "bin"));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("core's queue capacity and byte budget are what a new queue reports", async () => {
    const text = readRepoFile("packages/core/README.md");
    const queue = new ResourceLeaseQueue();
    const stats = queue.stats();
    await queue.close();
    expect(text).toContain(`| \`capacity\` | ${stats.capacity} |`);
    expect(stats.capacity).toBe(512);
    expect(stats.maxBytes).toBe(512 * 1024 * 1024);
    expect(text).toContain("| `maxBodyBytes` / `maxBytes` | 1 MiB / 512 MiB |");
  });

  it("the hub's and the CLI's defaults are what their --help says", async () => {
    const hub = await runProcess(join(bin, "omnirelay-hub"), ["--help"], { cwd: work });
    expect(hub.stdout).toMatch(/--port <n>\s+gRPC port \(default 7950;/);
    expect(hub.stdout).toMatch(/--http-port <n>\s+health and metrics port \(default 7951;/);
    expect(hub.stdout).toMatch(/--durability <mode>.*batched \(default\)/);
    expect(readRepoFile("apps/replication-hub/README.md")).toContain("| `--port` / `--http-port` | 7950 / 7951 |");
    const cli = await runProcess(join(bin, "omnirelay"), ["--help"], { cwd: work, env: { COLUMNS: "200" } });
    expect(cli.stdout).toContain('(default: "http://127.0.0.1:7420", env: OMNIRELAY_URL)');
    expect(cli.stdout).toMatch(/--timeout-ms <ms>\s+deadline of each call \(default: 30000\)/);
    const cliReadme = readRepoFile("packages/cli/README.md");
    expect(cliReadme).toContain("| `--url` | `http://127.0.0.1:7420` (env `OMNIRELAY_URL`) |");
    expect(cliReadme).toContain("| `--timeout-ms` | 30000 |");
  });

  it("fencedBlocks reads info strings and refuses an unclosed fence", () => {
    const blocks = fencedBlocks("a\n```ts example\nx\n```\n```sh\ny\n```\n");
    expect(blocks.map((b) => [b.lang, b.tags, b.body, b.line])).toEqual([
      ["ts", ["example"], "x", 2],
      ["sh", [], "y", 5],
    ]);
    expect(() => fencedBlocks("```ts\nx\n")).toThrow(/unclosed/);
  });
});
