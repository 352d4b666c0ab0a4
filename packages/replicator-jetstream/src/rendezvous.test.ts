import { describe, expect, it } from "vitest";
import { placeShards, rendezvousNode } from "./rendezvous.js";

const shards = Array.from({ length: 1000 }, (_, i) => `orders-${i}`);

function counts(placement: Map<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const node of placement.values()) out[node] = (out[node] ?? 0) + 1;
  return out;
}

describe("rendezvous placement", () => {
  it("places every shard on exactly one node, spread evenly, the same on every call and in any member order", () => {
    const one = placeShards({ shards, nodes: ["a", "b", "c", "d"] });
    const two = placeShards({ shards, nodes: ["d", "c", "b", "a", "b"] });
    expect(one.size).toBe(1000);
    expect([...two]).toEqual([...one]);
    for (const n of Object.values(counts(one))) {
      expect(n).toBeGreaterThan(200);
      expect(n).toBeLessThan(300);
    }
    expect(Object.keys(counts(one)).sort()).toEqual(["a", "b", "c", "d"]);
  });

  it("a node leaving moves only its shards; one joining takes only shards that now go to it", () => {
    const before = placeShards({ shards, nodes: ["a", "b", "c", "d"] });
    const left = placeShards({ shards, nodes: ["a", "b", "d"] });
    for (const shard of shards) {
      if (before.get(shard) !== "c") expect(left.get(shard)).toBe(before.get(shard));
      else expect(left.get(shard)).not.toBe("c");
    }
    const joined = placeShards({ shards, nodes: ["a", "b", "c", "d", "e"] });
    let moved = 0;
    for (const shard of shards) {
      if (joined.get(shard) !== before.get(shard)) {
        expect(joined.get(shard)).toBe("e");
        moved++;
      }
    }
    expect(moved).toBeGreaterThan(150); // about a fifth
    expect(moved).toBeLessThan(250);
  });

  it("a pin wins while its node is a member, and is ignored (rendezvous) while it is not", () => {
    const shard = shards.find((s) => rendezvousNode(s, ["a", "b"]) === "a") as string;
    const pins = new Map([[shard, "b"]]);
    expect(placeShards({ shards: [shard], nodes: ["a", "b"], pins }).get(shard)).toBe("b");
    expect(placeShards({ shards: [shard], nodes: ["a", "c"], pins }).get(shard)).toBe(
      rendezvousNode(shard, ["a", "c"]),
    );
    expect(placeShards({ shards: [shard], nodes: [] }).size).toBe(0);
  });
});
