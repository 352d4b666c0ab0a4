import { execFileSync, spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";

const netnsModule = resolve(import.meta.dirname, "../dist/netns.js");

/** Runs `body` in a child node process that has made a lab; resolves with the lab's namespaces and the exit. */
function labChild(
  body: string,
): Promise<{ namespaces: string[]; existed: boolean; code: number | null; signal: string | null }> {
  const script = `import { NetLab } from ${JSON.stringify(netnsModule)};
const lab = new NetLab();
const a = lab.namespace();
const b = lab.namespace();
lab.link(a, b);
console.log(JSON.stringify([a, b]));
${body}`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
  let namespaces: string[] = [];
  let existed = false;
  createInterface({ input: child.stdout }).once("line", (line) => {
    namespaces = JSON.parse(line) as string[];
    child.emit("lab-ready");
  });
  return new Promise((res) => {
    child.once("lab-ready", () => {
      existed = namespaces.every((ns) => new RegExp(`^${ns}( |$)`, "m").test(listed()));
      if (body.includes("SIGTERM-ME")) child.kill("SIGTERM");
    });
    child.once("exit", (code, signal) => res({ namespaces, existed, code, signal }));
  });
}

const listed = () => execFileSync("ip", ["netns", "list"], { encoding: "utf8" });

describe("the drills' network namespaces", () => {
  it("are removed when the process that made them fails with an uncaught error", async () => {
    const run = await labChild(`setTimeout(() => { throw new Error("the drill failed"); }, 500);`);
    expect(run.code).toBe(1);
    expect(run.namespaces).toHaveLength(2);
    expect(run.existed).toBe(true);
    for (const ns of run.namespaces) {
      expect(ns).toMatch(/^or-\d+-\d+-\d+$/);
      expect(listed()).not.toMatch(new RegExp(`^${ns}( |$)`, "m"));
    }
  });

  it("are removed when the process is stopped with SIGTERM (Ctrl-C is handled alike)", async () => {
    const run = await labChild(`/* SIGTERM-ME */ setInterval(() => {}, 1000);`);
    expect(run.code).toBe(130);
    expect(run.namespaces).toHaveLength(2);
    expect(run.existed).toBe(true);
    for (const ns of run.namespaces) expect(listed()).not.toMatch(new RegExp(`^${ns}( |$)`, "m"));
  });
});
