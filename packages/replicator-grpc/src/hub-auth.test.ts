import { describe, expect, it } from "vitest";
import { parseSubjectAltNames } from "./hub-auth.js";

describe("parseSubjectAltNames", () => {
  it("reads Node's subjectaltname text, entry by entry", () => {
    expect(
      parseSubjectAltNames("DNS:billing-2, URI:spiffe://omnirelay.test/node/billing-3, IP Address:127.0.0.1"),
    ).toEqual([
      { kind: "DNS", value: "billing-2" },
      { kind: "URI", value: "spiffe://omnirelay.test/node/billing-3" },
      { kind: "IP Address", value: "127.0.0.1" },
    ]);
    expect(parseSubjectAltNames("")).toEqual([]);
  });

  it("keeps a quoted value whole, so a crafted SAN cannot smuggle in a second name", () => {
    // Node quotes a value that holds a comma or quote as a JSON string.
    expect(parseSubjectAltNames('DNS:"reporting, DNS:billing-1", DNS:ok')).toEqual([
      { kind: "DNS", value: "reporting, DNS:billing-1" },
      { kind: "DNS", value: "ok" },
    ]);
    expect(parseSubjectAltNames('URI:"a\\"b", DNS:c')).toEqual([
      { kind: "URI", value: 'a"b' },
      { kind: "DNS", value: "c" },
    ]);
    // An unterminated quote yields an empty (never matching) name rather than a guess.
    expect(parseSubjectAltNames('DNS:"billing-1')).toEqual([{ kind: "DNS", value: "" }]);
  });
});
