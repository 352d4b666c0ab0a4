import { copyFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const fixtures = fileURLToPath(new URL("./fixtures/", import.meta.url));

/** Copies a fixture file into a fresh folder as `name`; `dispose` removes the folder. */
export function scratch(fixture: string, name = "input.ts") {
  const dir = mkdtempSync(join(tmpdir(), "tablelease-migrate-"));
  const path = join(dir, name);
  copyFileSync(join(fixtures, fixture), path);
  return {
    dir,
    path,
    read: () => readFileSync(path, "utf8"),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const readFixture = (path: string) => readFileSync(join(fixtures, path), "utf8");
