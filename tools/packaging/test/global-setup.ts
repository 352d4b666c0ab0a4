import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { publishedPackages, repoRoot, run } from "./helpers.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Package name → path of its tarball, packed from this checkout. */
    tarballs: Record<string, string>;
  }
}

let dir: string | undefined;

/** Packs every published package with `pnpm pack` (its prepack builds it first), one at a time. */
export async function setup(project: TestProject): Promise<void> {
  dir = mkdtempSync(join(tmpdir(), "omnirelay-tarballs-"));
  const tarballs: Record<string, string> = {};
  for (const pkg of publishedPackages()) {
    const before = new Set(readdirSync(dir));
    await run("pnpm", ["pack", "--pack-destination", dir], { cwd: join(repoRoot, pkg.dir) });
    const made = readdirSync(dir).filter((f) => !before.has(f) && f.endsWith(".tgz"));
    if (made.length !== 1) throw new Error(`pnpm pack in ${pkg.dir} made ${made.length} tarballs`);
    tarballs[pkg.name] = join(dir, made[0]!);
  }
  project.provide("tarballs", tarballs);
}

export function teardown(): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}
