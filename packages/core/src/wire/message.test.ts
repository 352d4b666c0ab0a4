import { describe, expect, it } from "vitest";
import { f, message } from "./message.js";
import { requestSite } from "./site.js";
import { encodeTime } from "./time.js";

const Pair = message<{ alpha: string; beta?: number }>({
  alpha: f.text({ max: 10, required: "test.alpha.required" }),
  beta: f.int({ min: 0 }),
});

describe("a described message", () => {
  it("matches names case-insensitively: an exact name wins wherever it is, else the first match", () => {
    expect(Pair.read({ ALPHA: "upper", alpha: "exact" }, requestSite())).toEqual({ alpha: "exact" });
    expect(Pair.read({ alpha: "exact", ALPHA: "upper" }, requestSite())).toEqual({ alpha: "exact" });
    expect(Pair.read({ ALPHA: "first", Alpha: "second" }, requestSite())).toEqual({ alpha: "first" });
    expect(Pair.read({ alpha: "a", BeTa: 3 }, requestSite())).toEqual({ alpha: "a", beta: 3 });
  });

  it("ignores unknown and inherited keys", () => {
    const inherited = Object.create({ beta: 5 }) as Record<string, unknown>;
    inherited.alpha = "a";
    inherited.gamma = "unknown";
    expect(Pair.read(inherited, requestSite())).toEqual({ alpha: "a" });
  });

  it("names the field of a bad value by its path, built only then", () => {
    const at = requestSite("items[3]");
    expect(() => Pair.read({ alpha: "a", beta: -1 }, at)).toThrow(
      expect.objectContaining({ metadata: { field: "items[3].beta" } }),
    );
    expect(() => Pair.read({ beta: 1 }, at)).toThrow(expect.objectContaining({ code: "test.alpha.required" }));
  });

  it("writes present fields in the description's order and leaves absent ones out", () => {
    expect(Object.keys(Pair.write({ beta: 2, alpha: "a" }))).toEqual(["alpha", "beta"]);
    expect(Pair.write({ alpha: "a" })).toStrictEqual({ alpha: "a" });
  });

  it("refuses a field name that is not an identifier (the reader and writer are compiled from the names)", () => {
    expect(() => message<Record<string, string>>({ "a-b": f.text({ max: 1 }) })).toThrow(/identifier/);
    expect(() => message<Record<string, string>>({ "x; process.exit()": f.text({ max: 1 }) })).toThrow(/identifier/);
  });
});

describe("encodeTime", () => {
  it("gives each time its own text however many different times alternate", () => {
    const times = [0, 1, 86_400_000, 1_700_000_000_123, 253_402_300_799_999, 2, 3];
    for (let round = 0; round < 3; round++) {
      for (const ms of times) expect(encodeTime(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
