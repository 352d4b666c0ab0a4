import { describe, expect, it } from "vitest";
import type { DeterministicStateStore } from "../contracts/stores.js";
import { makeEvent } from "../replication/test-fixtures.js";
import { InMemoryDeterministicStateStore } from "./in-memory-state-store.js";
import { resolveDeterministicOptions } from "./options.js";

describe("resolveDeterministicOptions", () => {
  const stateStore = new InMemoryDeterministicStateStore();

  it("applies the defaults", () => {
    const resolved = resolveDeterministicOptions({ stateStore });
    expect(resolved.changeId).toBe("resourcelease.replication");
    expect(resolved.minVersion).toBe(1);
    expect(resolved.maxVersion).toBe(1);
    expect(resolved.stateStore).toBe(stateStore);
    expect(resolved.effectIdFactory(makeEvent(42))).toBe("resourcelease.replication/seq/42");
  });

  it("treats a blank change id as the default and clamps versions", () => {
    expect(resolveDeterministicOptions({ stateStore, changeId: "  " }).changeId).toBe("resourcelease.replication");
    const custom = resolveDeterministicOptions({ stateStore, changeId: " billing ", minVersion: 0, maxVersion: -4 });
    expect(custom).toMatchObject({ changeId: "billing", minVersion: 1, maxVersion: 1 });
    expect(custom.effectIdFactory(makeEvent(3))).toBe("billing/seq/3");
    expect(resolveDeterministicOptions({ stateStore, minVersion: 3 })).toMatchObject({ minVersion: 3, maxVersion: 3 });
    expect(resolveDeterministicOptions({ stateStore, minVersion: 3, maxVersion: 2 }).maxVersion).toBe(3);
    expect(resolveDeterministicOptions({ stateStore, minVersion: 2, maxVersion: 5 }).maxVersion).toBe(5);
  });

  it("requires a state store and valid versions", () => {
    expect(() =>
      resolveDeterministicOptions({ stateStore: undefined as unknown as DeterministicStateStore }),
    ).toThrowError(
      expect.objectContaining({
        status: "invalid-argument",
        code: "resourcelease.deterministic.state_store_required",
        metadata: { option: "stateStore" },
      }),
    );
    expect(() => resolveDeterministicOptions({ stateStore, maxVersion: 1.5 })).toThrowError(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "maxVersion" } }),
    );
  });
});
