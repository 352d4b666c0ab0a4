import { readFileSync } from "node:fs";
import { resolve } from "node:path";

/** The repository root. */
export const repoRoot = resolve(import.meta.dirname, "../../..");

/** docs/reliability.md. */
export function reliabilityDoc(): string {
  return readFileSync(resolve(repoRoot, "docs/reliability.md"), "utf8");
}

/** The command lines of the doc's ```sh blocks that start with `prefix` (indented blocks included). */
export function docCommands(prefix: string): string[] {
  const out: string[] = [];
  let inSh = false;
  for (const raw of reliabilityDoc().split("\n")) {
    const line = raw.trim();
    if (line.startsWith("```")) {
      inSh = !inSh && line === "```sh";
      continue;
    }
    if (inSh && line.startsWith(prefix)) out.push(line);
  }
  return out;
}

/** The one documented command starting with `prefix`; throws unless there is exactly one. */
export function docCommand(prefix: string): string {
  const found = docCommands(prefix);
  if (found.length !== 1)
    throw new Error(`docs/reliability.md: expected one '${prefix}…' command, found ${found.length}`);
  return found[0] as string;
}

/** Splits a documented command line into words (the doc's commands use no quoting except the sqlite3 one). */
export function words(command: string): string[] {
  return command.split(/\s+/).filter(Boolean);
}
