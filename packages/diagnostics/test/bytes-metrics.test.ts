import { afterEach, describe, expect, it } from "vitest";
import { closeAll, parseExposition, payload, rpc, sampleValue, startNode } from "./harness.js";

afterEach(closeAll);

describe("byte budget metrics (hardening finding 7)", () => {
  it("report the bytes a shard holds, its budget, and its dead letters' count and bytes", async () => {
    const node = await startNode();
    const ns = node.namespace;
    const body = Buffer.alloc(300, 1).toString("base64");
    await rpc(node.url, `${ns}::enqueue`, { payload: { ...payload("a"), body } });
    await rpc(node.url, `${ns}::enqueue`, { payload: { ...payload("b"), body } });
    const grant = await rpc(node.url, `${ns}::lease`, {});
    await rpc(node.url, `${ns}::fail`, { ownershipToken: grant.ownershipToken, requeue: false });

    const { types, samples } = parseExposition(await (await fetch(`${node.url}/metrics`)).text());
    for (const name of [
      "omnirelay_resourcelease_bytes_held",
      "omnirelay_resourcelease_max_bytes",
      "omnirelay_resourcelease_dead_letters",
      "omnirelay_resourcelease_dead_letter_bytes",
    ]) {
      expect(types.get(name), name).toBe("gauge");
    }
    const stats = node.component.queue.stats();
    const perItem = 300 + "table".length + 1 + 1 + "json".length;
    expect(stats.bytesHeld).toBe(perItem);
    expect(sampleValue(samples, "omnirelay_resourcelease_bytes_held{", `shard="${ns}"`)).toBe(perItem);
    expect(sampleValue(samples, "omnirelay_resourcelease_max_bytes{", `shard="${ns}"`)).toBe(stats.maxBytes);
    expect(sampleValue(samples, "omnirelay_resourcelease_dead_letters{", `shard="${ns}"`)).toBe(1);
    expect(sampleValue(samples, "omnirelay_resourcelease_dead_letter_bytes{", `shard="${ns}"`)).toBe(perItem);
  });
});
