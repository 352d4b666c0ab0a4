import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cli, startNode, type TestNode } from "./harness.js";

// What the server sends reaches an operator's terminal: a peer id, an error message. Control characters in it must
// arrive escaped, so a caller cannot recolour, clear or retitle the terminal or forge a row of a table.
describe("the human output escapes control characters", () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode({ controlPlane: true });
  });
  afterEach(async () => {
    await node.close();
  });

  it("a peer id with ESC, CR and LF is one row, escaped", async () => {
    const evil = "x\x1b[2K\r\x1b[32mforged  yes\x1b[0m\nworker-8\u202e";
    node.tracker.recordPoll("real-worker");
    node.tracker.recordPoll(evil);
    const run = await cli(["--url", node.url, "resourcelease", "peers"]);
    expect(run.code, run.stderr).toBe(0);
    const controls = [...run.stdout].filter(
      (c) => c !== "\n" && (c < " " || (c >= "\x7f" && c <= "\x9f") || c === "\u202e"),
    );
    expect(controls).toEqual([]);
    const rows = run.stdout
      .trimEnd()
      .split("\n")
      .filter((line) => /^(x|real-worker)/.test(line));
    expect(rows).toHaveLength(2);
    expect(run.stdout).toContain("x\\u001b[2K\\u000d\\u001b[32mforged");
    expect(run.stdout).toContain("\\u000aworker-8\\u202e");
  });

  it("--json keeps the peer id exactly (JSON escapes it)", async () => {
    node.tracker.recordPoll("a\x1bb");
    const run = await cli(["--url", node.url, "--json", "resourcelease", "peers"]);
    expect(JSON.parse(run.stdout).peers.map((p: { peerId: string }) => p.peerId)).toContain("a\x1bb");
  });
});
