import { describe, expect, it } from "vitest";
import { runLint } from "../src/lint.js";
import { fixtures } from "./helpers.js";

describe("tablelease lint on fixtures", () => {
  it("reports every leftover in leftovers.ts, at its place", () => {
    const findings = runLint([`${fixtures}lint/leftovers.ts`]).map((f) => `${f.line}:${f.column} ${f.rule}`);
    expect(findings).toEqual([
      "2:15 tablelease/type-name",
      "2:38 tablelease/type-name",
      "5:3 tablelease/payload-field",
      "6:3 tablelease/payload-field",
      "11:43 tablelease/type-name",
      "12:12 tablelease/payload-field",
      "12:25 tablelease/payload-read",
      "12:36 tablelease/payload-field",
      "12:45 tablelease/payload-read",
      "15:37 tablelease/payload-field",
      "15:60 tablelease/payload-field",
      "18:24 tablelease/payload-read",
      "21:84 tablelease/type-name",
      "22:28 tablelease/token-without-fencing",
      "22:89 tablelease/error-code",
      "25:26 tablelease/procedure",
      "26:35 tablelease/procedure",
      "27:25 tablelease/error-code",
    ]);
  });

  it("says what replaces a renamed code and what to use instead of a removed type", () => {
    const messages = runLint([`${fixtures}lint/leftovers.ts`]).map((f) => f.message);
    expect(messages).toContain("'error.taskqueue.lease_inactive' is now 'resourcelease.lease.fenced'.");
    expect(messages).toContain("'error.tablelease.failed' is now 'resourcelease.failed'.");
    expect(messages).toContain("TableLeaseItemPayload was removed: use ResourceLeaseItemPayload from @omnirelay/core.");
  });

  it("stays silent on resourcelease-era code with look-alike shapes", () => {
    expect(runLint([`${fixtures}lint/clean.ts`])).toEqual([]);
  });
});
