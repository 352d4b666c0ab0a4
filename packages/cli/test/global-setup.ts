import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Builds dist/main.js so every test spawns the current CLI (turbo's test → build does the same). */
export default function setup(): void {
  const cwd = fileURLToPath(new URL("..", import.meta.url));
  execFileSync("pnpm", ["exec", "tsup", "--silent"], { cwd, stdio: "inherit" });
}
