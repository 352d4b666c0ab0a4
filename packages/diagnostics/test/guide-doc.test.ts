import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { closeAll, onClose, startNode } from "./harness.js";

const run = promisify(execFile);
const guide = readFileSync(new URL("../../../docs/guides/diagnostics.md", import.meta.url), "utf8");

/** Each ```bash block of the guide that is followed by the ```json block it prints. */
function examples(): Array<{ command: string; expected: unknown }> {
  const blocks = [...guide.matchAll(/```(bash|json)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
  const out: Array<{ command: string; expected: unknown }> = [];
  for (let i = 0; i < blocks.length - 1; i++) {
    if (blocks[i]!.lang === "bash" && blocks[i + 1]!.lang === "json") {
      out.push({ command: blocks[i]!.body.trim(), expected: JSON.parse(blocks[i + 1]!.body) });
    }
  }
  return out;
}

afterEach(closeAll);

describe("docs/guides/diagnostics.md", () => {
  it.each(["RPC port", "own port"] as const)("every curl example prints what the guide shows (%s)", async (mount) => {
    const list = examples();
    expect(list.length).toBeGreaterThanOrEqual(2);
    const node = await startNode();
    const own = await node.control.listen();
    onClose(() => own.close());
    const env = { ...process.env, CONTROL_URL: mount === "RPC port" ? node.url : own.url };
    for (const { command, expected } of list) {
      const { stdout } = await run("bash", ["-c", `set -euo pipefail\n${command}`], { env });
      expect(JSON.parse(stdout), command).toEqual(expected);
    }
    // The allowed example took effect; the forged one did not undo it.
    expect(node.control.toggles.logging.level).toBe("debug");
  });
});
