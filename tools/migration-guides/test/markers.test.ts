import { describe, expect, it } from "vitest";
import { markedBlocks, readGuide, unmarkedBlocks } from "../src/extract.js";

const GUIDES = ["migrating-from-bullmq.md", "migrating-from-graphile-worker.md", "migrating-from-tablelease.md"];

describe("the migration guides' markers", () => {
  for (const guide of GUIDES) {
    it(`${guide}: every TypeScript and shell block is run or type-checked by a test`, () => {
      const markdown = readGuide(guide);
      expect(unmarkedBlocks(markdown, ["ts", "typescript", "js", "bash", "sh", "shell"])).toEqual([]);
      expect(markedBlocks(markdown).length).toBeGreaterThan(3);
    });
  }

  it("a marker must sit right above a fenced block", () => {
    expect(() => markedBlocks("<!-- run-by-test: a.ts -->\n\n```ts\nx\n```\n")).toThrow(
      /not followed by a fenced block/,
    );
    expect(markedBlocks("<!-- run-by-test: a.ts -->\n```ts\nconst x = 1;\n```\n")).toEqual([
      { kind: "run-by-test", target: "a.ts", lang: "ts", code: "const x = 1;\n", line: 1 },
    ]);
  });
});
