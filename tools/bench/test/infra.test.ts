import { spawn } from "node:child_process";
import { once } from "node:events";
import { expect, it } from "vitest";
import { cpuMicrosOf } from "../src/lib/infra.js";

// The lifecycle rows' CPU per item adds each process's CPU time now less its time before. A process gone meanwhile
// (a PostgreSQL backend) must read as gone, not as 0: 0 subtracted all its earlier time and made a row negative.
it("reads a live process's CPU time, and nothing for one that has gone", async () => {
  // It spins until it has used 200 ms of CPU, says so, and idles.
  const child = spawn(
    process.execPath,
    ["-e", "while (process.cpuUsage().user < 200000); console.log('spun'); setInterval(() => {}, 1000)"],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await once(child.stdout, "data");
  const pid = child.pid as number;
  const busy = cpuMicrosOf(pid);
  expect(busy).toBeGreaterThanOrEqual(200_000);
  expect(cpuMicrosOf(process.pid)).toBeGreaterThan(0);
  child.kill("SIGKILL");
  await once(child, "exit");
  expect(cpuMicrosOf(pid)).toBeUndefined();
});
