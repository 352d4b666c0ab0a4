import { describe, expect, it } from "vitest";
import { AuthorizationMiddleware, AuthorizationPolicy } from "./authorization.js";
import { compileProcedureGlob, matchesProcedureGlob, splitProcedure } from "./procedure-glob.js";
import { makeRequest, recordingDispatcher } from "./test-helpers.js";

const procedures = [
  "resourcelease::lease",
  "resourcelease::complete",
  "resourcelease::drain",
  "resourcelease.billing::lease",
  "resourcelease.billing::complete",
  "health::check",
];

function setup() {
  return recordingDispatcher(
    [
      new AuthorizationMiddleware({
        rules: [
          { principals: ["worker-1", "worker-2"], procedures: ["resourcelease::lease", "resourcelease::complete"] },
          { principals: ["operator"], procedures: ["resourcelease::*"] },
          { principals: ["*"], procedures: ["*::lease"] },
        ],
        allowAnonymous: ["HEALTH::*"],
      }),
    ],
    procedures,
  );
}

async function outcome(principal: string | undefined, procedure: string) {
  const { dispatcher, seen } = setup();
  const meta = principal === undefined ? { procedure } : { procedure, principal };
  try {
    await dispatcher.dispatch(makeRequest(meta));
    expect(seen).toHaveLength(1);
    return "allowed";
  } catch (error) {
    expect(seen).toHaveLength(0);
    return error;
  }
}

describe("procedure globs", () => {
  it("match case-insensitively with * as a wildcard", () => {
    expect(matchesProcedureGlob("resourcelease::*", "ResourceLease::Lease")).toBe(true);
    expect(matchesProcedureGlob("resourcelease::*", "resourcelease.billing::lease")).toBe(false);
    expect(matchesProcedureGlob("*::lease", "resourcelease.billing::LEASE")).toBe(true);
    expect(matchesProcedureGlob("*::lease", "resourcelease::leases")).toBe(false);
    expect(matchesProcedureGlob("*", "anything")).toBe(true);
    expect(matchesProcedureGlob("resourcelease::lease", "resourcelease::lease2")).toBe(false);
    const middle = compileProcedureGlob("resource*::*ease");
    expect(middle("resourcelease.x::lease")).toBe(true);
    expect(middle("resource::ease")).toBe(true);
    expect(middle("resourc::ease")).toBe(false);
    expect(compileProcedureGlob("a*a")("a")).toBe(false);
  });

  it("split procedures into namespace and lower-case verb", () => {
    expect(splitProcedure("resourcelease.billing::Complete")).toEqual({
      namespace: "resourcelease.billing",
      verb: "complete",
    });
    expect(splitProcedure("noverb")).toBeUndefined();
    expect(splitProcedure("::lease")).toBeUndefined();
    expect(splitProcedure("ns::")).toBeUndefined();
  });
});

describe("AuthorizationMiddleware", () => {
  it("allows a principal only the procedures a rule grants it", async () => {
    expect(await outcome("worker-1", "resourcelease::complete")).toBe("allowed");
    expect(await outcome("operator", "resourcelease::drain")).toBe("allowed");
    expect(await outcome("worker-1", "resourcelease::drain")).toMatchObject({
      status: "permission-denied",
      code: "omnirelay.auth.forbidden",
      metadata: { procedure: "resourcelease::drain" },
    });
    expect(await outcome("operator", "resourcelease.billing::complete")).toMatchObject({
      code: "omnirelay.auth.forbidden",
    });
  });

  it("lets '*' stand for any authenticated principal, never for anonymous callers", async () => {
    expect(await outcome("someone", "resourcelease.billing::lease")).toBe("allowed");
    expect(await outcome(undefined, "resourcelease.billing::lease")).toMatchObject({
      status: "unauthenticated",
      code: "omnirelay.auth.required",
      metadata: { procedure: "resourcelease.billing::lease" },
    });
  });

  it("opens anonymous-allowed procedures to everyone", async () => {
    expect(await outcome(undefined, "health::check")).toBe("allowed");
    expect(await outcome("worker-1", "health::check")).toBe("allowed");
  });

  it("denies everything with no rules", async () => {
    const { dispatcher } = recordingDispatcher([new AuthorizationMiddleware({ rules: [] })]);
    await expect(dispatcher.dispatch(makeRequest({ principal: "root" }))).rejects.toMatchObject({
      code: "omnirelay.auth.forbidden",
    });
  });

  it("exposes its decisions as a reusable policy", () => {
    const policy = new AuthorizationPolicy({ rules: [{ principals: ["admin"], procedures: ["diagnostics::*"] }] });
    expect(policy.decide("admin", "Diagnostics::Tracing")).toBe("allowed");
    expect(policy.decide("Admin", "diagnostics::tracing")).toBe("forbidden");
    expect(policy.decide(undefined, "diagnostics::tracing")).toBe("unauthenticated");
    expect(policy.isAllowed("admin", "resourcelease::drain")).toBe(false);
  });

  it("validates its rules", () => {
    expect(() => new AuthorizationMiddleware({ rules: undefined as never })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "rules" } }),
    );
    expect(() => new AuthorizationMiddleware({ rules: [{ principals: [], procedures: ["*"] }] })).toThrow(
      expect.objectContaining({ metadata: { option: "rules[0].principals" } }),
    );
    expect(() => new AuthorizationMiddleware({ rules: [{ principals: ["a"], procedures: [" "] }] })).toThrow(
      expect.objectContaining({ metadata: { option: "rules[0].procedures" } }),
    );
  });
});
