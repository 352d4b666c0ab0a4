import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { HttpOutbound, ResourceLeaseClient } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { getJson, killAll, type MeshStateDoc, startDispatcher, tempDir } from "./helpers.js";

const run = promisify(execFile);
const guide = readFileSync(resolve(import.meta.dirname, "../../../docs/guides/mesh-demo.md"), "utf8");

afterEach(killAll);

describe("docs/guides/mesh-demo.md, dead letters as written", () => {
  it("the dead-letter examples: list, redrive one, redrive all", async () => {
    const dir = tempDir();
    try {
      const { httpUrl, rpcUrl } = await startDispatcher(dir.path);
      // Two dead letters on the lakehouse shard: leased and failed without requeue, over the queue's own RPC.
      const client = new ResourceLeaseClient({
        outbound: new HttpOutbound({ url: rpcUrl }),
        namespace: "resourcelease.mesh.lakehouse",
        caller: "docs-test",
      });
      const ids: number[] = [];
      try {
        for (const n of [1, 2]) {
          const payload = {
            resourceType: "doc",
            resourceId: `doc-${n}`,
            partitionKey: "doc",
            payloadEncoding: "text/plain",
          };
          await client.enqueue(payload);
          const [grant] = await client.lease({ peerId: "docs-test" });
          expect(grant).toBeDefined();
          await client.fail(grant!.ownershipToken, { requeue: false, reason: "broken" });
          ids.push(grant!.sequenceId);
        }
      } finally {
        await client.close();
      }
      const block = guide.match(/```bash\n(curl -s http:\/\/127\.0\.0\.1:5158\/demo\/dead-letters[\s\S]*?)```/)?.[1];
      expect(block).toBeDefined();
      const port = new URL(httpUrl).port;
      const commands = block!
        .trim()
        .split("\n")
        .map((l) => l.replaceAll("127.0.0.1:5158", `127.0.0.1:${port}`).replace("[42]", `[${ids[0]}]`));
      expect(commands).toHaveLength(3);
      const script = `set -euo pipefail\n${commands.join("\necho; echo ----\n")}`;
      const { stdout } = await run("bash", ["-c", script]);
      const [listed, one, all] = stdout.split("----").map((s) => JSON.parse(s.trim()));
      const lakehouse = listed.shards.find((s: { shard: string }) => s.shard === "resourcelease.mesh.lakehouse");
      expect(lakehouse.count).toBe(2);
      expect(lakehouse.items.map((i: { sequenceId: number; reason: string }) => [i.sequenceId, i.reason])).toEqual([
        [ids[1], "failed"],
        [ids[0], "failed"],
      ]);
      expect(one).toMatchObject({ total: 1, redriven: [{ shard: "resourcelease.mesh.lakehouse", count: 1 }] });
      expect(all).toMatchObject({ total: 1 });
      const state = await getJson<MeshStateDoc>(`${httpUrl}/demo/state`);
      const shard = state.shards.find((s) => s.namespace === "resourcelease.mesh.lakehouse");
      expect(shard).toMatchObject({ pending: 2, deadLetters: 0 });
    } finally {
      await killAll();
      dir.remove();
    }
  });
});
