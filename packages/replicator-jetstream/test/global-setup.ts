import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Builds dist/ so the child-process tests run the current code (turbo's test → build does the same). */
export default function setup(): void {
  const cwd = fileURLToPath(new URL("..", import.meta.url));
  // Through turbo, not tsup itself: an up-to-date dist/ is left as it is (tsup would clean it first), so the packages
  // that run this one's dist/ in the other test lane (scripts/test-lanes.sh) never see it missing.
  execFileSync(
    "pnpm",
    ["exec", "turbo", "run", "build", "--filter=@omnirelay/replicator-jetstream", "--output-logs=errors-only"],
    {
      cwd,
      stdio: "inherit",
    },
  );
}
