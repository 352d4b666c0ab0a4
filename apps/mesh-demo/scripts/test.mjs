// `pnpm test` for the mesh demo: the short soak and every other test file, side by side.
//
// The soak (test/soak.test.ts) is 90 s of one dispatcher at ~0.9 of a core; the other files run one at a time (each
// starts a mesh of processes) and use ~0.75 of a core. One after the other they took ~185 s of a 2-core machine's CI;
// side by side ~95 s, and neither's margins moved (soak: 237 ops/s against its floor of 125, RSS slope −2.9 MiB/min
// against its limit of 12). Each is its own vitest process: the demo is built once here first (tsup cleans dist/, so a
// second build must not run under the soak's process), and the soak's output is printed whole when it ends, after the
// other files' live output.
//
// With arguments (`pnpm test -- test/mesh.test.ts`) it is plain `vitest run <arguments>`.
import { execFileSync, spawn } from "node:child_process";

// `pnpm test -- <file>` passes the `--` on.
const args = process.argv.slice(2).filter((arg) => arg !== "--");
const soakFile = "test/soak.test.ts";

/**
 * Runs `vitest run <argv>`; resolves with its exit code and, when `buffered`, everything it printed. `prebuilt` tells
 * the global setup that dist/ was just built here (it builds otherwise).
 */
function vitest(argv, { buffered, prebuilt }) {
  const child = spawn("vitest", ["run", ...argv], {
    env: prebuilt ? { ...process.env, MESH_DEMO_PREBUILT: "1" } : process.env,
    stdio: buffered ? ["ignore", "pipe", "pipe"] : "inherit",
  });
  let output = "";
  if (buffered) {
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
  }
  for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => child.kill(signal));
  return new Promise((resolve) => {
    child.once("error", (error) => resolve({ code: 1, output: `${output}\n${error.message}\n` }));
    child.once("exit", (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), output }));
  });
}

if (args.length > 0) {
  process.exitCode = (await vitest(args, { buffered: false, prebuilt: false })).code;
} else {
  execFileSync("tsup", [], { stdio: "ignore" });
  const soak = vitest(["--config", "vitest.soak.config.ts"], { buffered: true, prebuilt: true });
  const rest = await vitest(["--exclude", soakFile], { buffered: false, prebuilt: true });
  console.log(`\n--- ${soakFile}, run beside the files above ---\n`);
  const soakResult = await soak;
  process.stdout.write(soakResult.output);
  process.exitCode = rest.code !== 0 ? rest.code : soakResult.code;
}
