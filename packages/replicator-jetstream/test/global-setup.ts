import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Builds dist/ so the child-process tests run the current code (turbo's test → build does the same). */
export default function setup(): void {
  const cwd = fileURLToPath(new URL("..", import.meta.url));
  execFileSync("pnpm", ["exec", "tsup", "--silent"], { cwd, stdio: "inherit" });
}
