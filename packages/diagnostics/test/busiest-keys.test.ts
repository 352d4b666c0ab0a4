import { ResourceLeaseQueue } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { closeAll, onClose, payload, rpc, startNode } from "./harness.js";

afterEach(closeAll);

const tenant = (name: string, i: number) => ({ ...payload(`${name}-${i}`), attributes: { tenant: name } });

describe("/omnirelay/control/queues lists each shard's busiest keys", () => {
  it("serves active and pending per key, busiest first, capped by ?top, behind the route's auth", async () => {
    const node = await startNode({
      auth: { principalBinding: { requireAuthentication: true, trustedProxies: ["127.0.0.1"] }, admins: ["ops"] },
    });
    const queue = new ResourceLeaseQueue({ keys: { by: { attribute: "tenant" }, fair: true }, capacity: 100 });
    onClose(() => queue.close());
    node.control.addShard({ namespace: "tenants", queue });
    await queue.enqueueMany([
      ...Array.from({ length: 9 }, (_, i) => tenant("tenant-bulk", i)),
      ...Array.from({ length: 2 }, (_, i) => tenant("tenant-interactive", i)),
    ]);
    // Fair sharing alternates: two grants each.
    await queue.lease({ maxItems: 4 });
    await rpc(node.url, `${node.namespace}::enqueue`, { payload: payload("plain") });

    const server = await node.control.listen();
    onClose(() => server.close());
    const url = `${server.url}/omnirelay/control/queues`;
    const asDashboard = { headers: { "x-client-principal": "dashboard" } };
    expect((await fetch(url)).status).toBe(401);

    const res = await fetch(url, asDashboard);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { queues: Array<{ namespace: string; busiestKeys: unknown }> };
    const byName = new Map(body.queues.map((q) => [q.namespace, q]));
    expect(byName.get("tenants")).toMatchObject({
      pendingCount: 7,
      activeLeaseCount: 4,
      busiestKeys: [
        { key: "tenant-bulk", active: 2, pending: 7 },
        { key: "tenant-interactive", active: 2, pending: 0 },
      ],
    });
    // A queue without keys lists none.
    expect(byName.get(node.namespace)).toMatchObject({ pendingCount: 1, busiestKeys: [] });

    const one = (await (await fetch(`${url}?top=1`, asDashboard)).json()) as typeof body;
    expect(one.queues.find((q) => q.namespace === "tenants")?.busiestKeys).toEqual([
      { key: "tenant-bulk", active: 2, pending: 7 },
    ]);

    for (const top of ["0", "101", "1.5", "ten", ""]) {
      const bad = await fetch(`${url}?top=${top}`, asDashboard);
      expect(bad.status, top).toBe(400);
      expect(await bad.json()).toMatchObject({
        status: "INVALID_ARGUMENT",
        code: "resourcelease.argument.invalid",
        metadata: { field: "top" },
      });
    }
  });
});
