import { describe, expect, it } from "vitest";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { integerOption, numberOption, textOption } from "./options.js";

function refusal(run: () => unknown): { code: string; option: string | undefined; message: string } {
  try {
    run();
  } catch (error) {
    if (!isOmniRelayError(error)) throw error;
    expect(error.status).toBe("invalid-argument");
    return { code: error.code, option: error.metadata.option, message: error.message };
  }
  throw new Error("expected a refusal");
}

describe("integerOption", () => {
  it("returns the value inside its bounds and the fallback when absent", () => {
    expect(integerOption("capacity", 7, { min: 1 })).toBe(7);
    expect(integerOption("capacity", undefined, { min: 1, fallback: 512 })).toBe(512);
    expect(integerOption("capacity", null, { min: 1, fallback: 512 })).toBe(512);
    expect(integerOption("n", Number.MAX_SAFE_INTEGER, { min: 0 })).toBe(Number.MAX_SAFE_INTEGER);
  });

  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, "5", true, {}])("refuses %s", (bad) => {
    const r = refusal(() => integerOption("capacity", bad, { min: 1, fallback: 512 }));
    expect(r.code).toBe("resourcelease.options.invalid");
    expect(r.option).toBe("capacity");
    expect(r.message).toMatch(/^Option 'capacity' must be an integer >= 1, got /);
  });

  it("names both bounds when there is a maximum, and requires the value without a fallback", () => {
    expect(refusal(() => integerOption("prefetch", 10_001, { min: 0, max: 10_000 })).message).toBe(
      "Option 'prefetch' must be an integer between 0 and 10000, got 10001.",
    );
    const missing = refusal(() => integerOption("port", undefined, { min: 0 }));
    expect(missing).toEqual({
      code: "resourcelease.options.invalid",
      option: "port",
      message: "Option 'port' is required.",
    });
  });
});

describe("numberOption", () => {
  it("accepts fractions and applies aboveMin", () => {
    expect(numberOption("fraction", 0.25, { min: 0, aboveMin: true })).toBe(0.25);
    expect(numberOption("cooldownMs", 0, { min: 0 })).toBe(0);
    expect(numberOption("rate", undefined, { min: 0, fallback: 3 })).toBe(3);
    expect(refusal(() => numberOption("rate", 0, { min: 0, aboveMin: true })).message).toBe(
      "Option 'rate' must be a finite number > 0, got 0.",
    );
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, -0.5, "1", 11])("refuses %s", (bad) => {
    expect(refusal(() => numberOption("ratio", bad, { min: 0, max: 10 })).option).toBe("ratio");
  });
});

describe("textOption", () => {
  it("trims and applies the fallback", () => {
    expect(textOption("shard", "  a  ")).toBe("a");
    expect(textOption("shard", undefined, { fallback: "default" })).toBe("default");
  });

  it.each(["", "   ", 42, "x".repeat(201), "a\uD800b"])("refuses %j", (bad) => {
    const r = refusal(() => textOption("shard", bad));
    expect(r.code).toBe("resourcelease.options.invalid");
    expect(r.option).toBe("shard");
  });
});
