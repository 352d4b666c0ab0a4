import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, onTestFinished } from "vitest";
import { repoRoot } from "./harness.js";
import { cliCommand, runShell, startDispatcherProcess } from "./processes.js";

const shq = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
const payload = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

describe("tools/rollout.sh against a real dispatcher process", () => {
  const stops: Array<() => void> = [];
  afterEach(() => {
    for (const stop of stops.splice(0)) stop();
  });

  it("drains, waits for active leases, restarts the process, waits for /readyz and restores every item", async () => {
    const dir = mkdtempSync(join(tmpdir(), "omnirelay-rollout-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const node = await startDispatcherProcess(dir, "resourcelease,resourcelease.billing");
    stops.push(() => node.stop());
    const before = node.client();
    const billing = node.client("resourcelease.billing");
    const ids = Array.from({ length: 40 }, (_, i) => `item-${i}`);
    for (const id of ids) await before.enqueue(payload(id));
    await billing.enqueue(payload("bill-1"));
    const [done, retried] = await before.lease({ peerId: "w", maxItems: 2 });
    const firstPid = node.pid();

    let sawWaiting!: () => void;
    const waiting = new Promise<void>((resolve) => {
      sawWaiting = resolve;
    });
    const rollout = runShell(
      [
        `'${join(repoRoot, "tools/rollout.sh")}'`,
        `--url '${node.url}'`,
        "--namespace resourcelease --namespace resourcelease.billing",
        `--out-dir '${join(dir, "out")}'`,
        `--restart-cmd ${shq(node.restartCmd)}`,
        "--poll-ms 100 --ready-timeout-ms 15000 --active-timeout-ms 15000",
      ].join(" "),
      { OMNIRELAY_BIN: cliCommand },
      (stderr) => {
        if (stderr.includes("resourcelease: 2 active lease(s)")) sawWaiting();
      },
    );
    // While the script waits for the active leases: one completes, one fails and is requeued during the drain.
    await Promise.race([
      waiting,
      rollout.then((r) => Promise.reject(new Error(`the script did not wait: ${r.stderr}`))),
    ]);
    expect((await before.stats()).state).toBe("draining");
    await before.complete(done!.ownershipToken);
    await before.fail(retried!.ownershipToken, { reason: "moved" });
    const result = await rollout;
    await before.close();
    await billing.close();
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/step 2\/6: wait for active leases/);
    expect(result.stderr).toMatch(/resourcelease: 2 active lease\(s\)/);
    expect(JSON.parse(result.stdout)).toMatchObject({ restoredCount: 40 });
    expect(node.pid()).not.toBe(firstPid);

    const after = node.client();
    const items = await after.drain();
    await after.restore([]);
    const afterBilling = node.client("resourcelease.billing");
    expect((await afterBilling.stats()).pendingCount).toBe(1);
    await after.close();
    await afterBilling.close();
    // Every item but the completed one came through, with its sequence id; the failed one carries attempt 2.
    expect(items.map((i) => i.payload.resourceId).sort()).toEqual(
      ids.filter((id) => id !== done!.payload.resourceId).sort(),
    );
    const moved = items.find((i) => i.sequenceId === retried!.sequenceId);
    expect(moved).toMatchObject({ attempt: 2, lastError: { message: "moved" } });
  });

  it("stops with exit 6 and prints restore commands when active leases do not finish in time", async () => {
    const dir = mkdtempSync(join(tmpdir(), "omnirelay-rollout-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const node = await startDispatcherProcess(dir);
    stops.push(() => node.stop());
    const c = node.client();
    await c.enqueue(payload("stuck"));
    await c.enqueue(payload("waiting"));
    await c.lease({ peerId: "w" });
    const result = await runShell(
      `'${join(repoRoot, "tools/rollout.sh")}' --url '${node.url}' --out-dir '${dir}/out' --restart-cmd 'exit 99' --poll-ms 50 --active-timeout-ms 300`,
      { OMNIRELAY_BIN: cliCommand },
    );
    expect(result.code, result.stderr).toBe(6);
    expect(result.stderr).toMatch(/FAILED: resourcelease still has 1 active lease/);
    expect(result.stderr).toMatch(/resourcelease restore --file .*resourcelease\.drain1\.json/);
    // The printed command puts the drained item back.
    const hint = /^\s+(.* resourcelease restore --file \S+)$/m.exec(result.stderr)![1]!;
    const restored = await runShell(hint);
    expect(restored.code, restored.stderr).toBe(0);
    expect(await c.stats()).toMatchObject({ state: "running", pendingCount: 1, activeLeaseCount: 1 });
    await c.close();
  });

  it("rejects bad usage with exit 2", async () => {
    const r = await runShell(`'${join(repoRoot, "tools/rollout.sh")}' --url http://127.0.0.1:1`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--restart-cmd is required/);
  });
});
