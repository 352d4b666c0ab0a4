import { afterEach, describe, expect, it } from "vitest";
import { runCodemod } from "../src/codemod.js";
import { runLint } from "../src/lint.js";
import { readFixture, scratch } from "./helpers.js";

const cases = [
  { name: "http-caller", identity: "qualified", expected: "output.ts" },
  { name: "typed-client", identity: "qualified", expected: "output.ts" },
  { name: "typed-client", identity: "split", expected: "output.split.ts" },
] as const;

describe("tablelease codemod on fixtures", () => {
  const disposers: Array<() => void> = [];
  afterEach(() => {
    for (const dispose of disposers.splice(0)) dispose();
  });

  for (const c of cases) {
    it(`${c.name} (${c.identity}): input.ts becomes ${c.expected}, and a second run changes nothing`, async () => {
      const file = scratch(`codemod/${c.name}/input.ts`);
      disposers.push(file.dispose);
      const changed = await runCodemod([file.dir], { identity: c.identity });
      expect(changed).toHaveLength(1);
      expect(changed[0]!.changes).toBeGreaterThan(0);
      expect(file.read()).toBe(readFixture(`codemod/${c.name}/${c.expected}`));
      expect(await runCodemod([file.dir], { identity: c.identity })).toEqual([]);
      expect(file.read()).toBe(readFixture(`codemod/${c.name}/${c.expected}`));
    });
  }

  it("--dry-run reports the changes and writes nothing", async () => {
    const file = scratch("codemod/http-caller/input.ts");
    disposers.push(file.dispose);
    const changed = await runCodemod([file.dir], { dryRun: true });
    expect(changed.map((c) => c.changes)).toEqual([8]);
    expect(file.read()).toBe(readFixture("codemod/http-caller/input.ts"));
  });

  it("leaves to the lint only what has no one-to-one replacement", async () => {
    const http = scratch("codemod/http-caller/output.ts");
    const qualified = scratch("codemod/typed-client/output.ts");
    const split = scratch("codemod/typed-client/output.split.ts");
    disposers.push(http.dispose, qualified.dispose, split.dispose);
    // A shard name kept in a constant: the codemod only rewrites it where it is a `namespace` option.
    expect(runLint([http.dir]).map((f) => `${f.line} ${f.rule}`)).toEqual(["5 tablelease/procedure"]);
    // With the qualified mapping, reads of payload.namespace/table cannot be rewritten one-to-one.
    expect(runLint([qualified.dir]).map((f) => `${f.line} ${f.rule}`)).toEqual([
      "5 tablelease/payload-read",
      "5 tablelease/payload-read",
      "9 tablelease/payload-read",
      "9 tablelease/payload-read",
    ]);
    expect(runLint([split.dir])).toEqual([]);
  });
});
