import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HttpOutbound, ResourceLeaseClient } from "@omnirelay/core";
import { cliDir, mainJs } from "./harness.js";

const fixture = fileURLToPath(new URL("./fixtures/dispatcher.mjs", import.meta.url));

/** A free TCP port on 127.0.0.1 (so a restarted dispatcher comes back on the same URL). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * A dispatcher child process on a fixed port, started by `dir/start.sh` (which records its pid in `dir/pid`), so a
 * shell restart command can replace it: `restartCmd` stops the current process and starts a new one.
 */
export async function startDispatcherProcess(dir: string, namespaces = "resourcelease") {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const start = join(dir, "start.sh");
  writeFileSync(
    start,
    [
      "#!/usr/bin/env bash",
      "set -euo pipefail",
      `cd '${cliDir}'`,
      `PORT=${port} NAMESPACES='${namespaces}' nohup '${process.execPath}' '${fixture}' >> '${dir}/dispatcher.log' 2>&1 &`,
      `echo $! > '${dir}/pid'`,
    ].join("\n"),
    { mode: 0o755 },
  );
  const pidFile = join(dir, "pid");
  const restartCmd = `old=$(cat '${pidFile}'); kill "$old"; while kill -0 "$old" 2>/dev/null; do sleep 0.05; done; '${start}'`;
  await runShell(`'${start}'`);
  await waitReady(url);
  return {
    url,
    restartCmd,
    pid: () => Number(readFileSync(pidFile, "utf8").trim()),
    client: (namespace?: string) =>
      new ResourceLeaseClient({
        outbound: new HttpOutbound({ url }),
        caller: "test",
        ...(namespace ? { namespace } : {}),
      }),
    stop() {
      try {
        process.kill(Number(readFileSync(pidFile, "utf8").trim()), "SIGKILL");
      } catch {
        // already gone
      }
    },
  };
}

/** Polls `url/readyz` until it answers 200. */
export async function waitReady(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a bash script; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runShell(
  script: string,
  env: Record<string, string> = {},
  onStderr?: (soFar: string) => void,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", script], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8");
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
      onStderr?.(stderr);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The CLI as a command line for scripts (split on spaces, as rollout.sh's OMNIRELAY_BIN is). */
export const cliCommand = `${process.execPath} ${mainJs}`;
