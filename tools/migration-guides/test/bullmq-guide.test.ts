import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpOutbound, ResourceLeaseClient } from "@omnirelay/core";
import { Queue } from "bullmq";
import { afterAll, describe, expect, it } from "vitest";
import {
  EXPECTED_CALLS,
  extractGuide,
  type MailerRecord,
  recordingMailer,
  typecheck,
  USERS,
  waitUntil,
} from "./helpers.js";

type Users = ReadonlyArray<{ to: string; name: string }>;
type Mailer = ReturnType<typeof recordingMailer>["mailer"];
interface Closable {
  close(): Promise<void>;
}
interface RedisOptions {
  connection: { host: string; port: number };
  prefix?: string;
}
interface BullProducer {
  enqueueWelcomeEmails(users: Users, options: RedisOptions): Promise<void>;
}
interface BullWorker {
  startEmailWorker(mailer: Mailer, options: RedisOptions): Closable;
}
interface OmniServer {
  startEmailNode(options: { dataDir: string }): Promise<{ url: string; stop(): Promise<void> }>;
}
interface OmniProducer {
  enqueueWelcomeEmails(users: Users, options: { url: string }): Promise<void>;
}
interface OmniWorker {
  startEmailWorker(mailer: Mailer, options: { url: string }): Closable;
}

const redis = {
  host: new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").hostname,
  port: Number(new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").port || 6379),
};

describe("docs/guides/migrating-from-bullmq.md", () => {
  const guide = extractGuide("migrating-from-bullmq.md");
  const load = <T>(path: string) => import(join(guide.dir, path)) as Promise<T>;
  const results: Record<string, MailerRecord> = {};
  const retryGaps: Record<string, number> = {};
  afterAll(() => guide.dispose());

  it("holds the worked example for both queues", () => {
    const targets = guide.blocks.map((b) => b.target);
    for (const file of ["email.ts", "bullmq/producer.ts", "bullmq/worker.ts", "omnirelay/producer.ts"]) {
      expect(targets).toContain(file);
    }
    expect(targets).toContain("omnirelay/worker.ts");
  });

  it("type-checks under the repository's strict compiler options", async () => {
    const result = await typecheck(guide.dir);
    expect(result.output).toBe("");
    expect(result.ok).toBe(true);
  });

  it("BullMQ version: runs against Redis", async () => {
    const prefix = `guide-${randomUUID()}`;
    const options = { connection: redis, prefix };
    const { enqueueWelcomeEmails } = await load<BullProducer>("bullmq/producer.ts");
    const { startEmailWorker } = await load<BullWorker>("bullmq/worker.ts");
    const queue = new Queue("email", options);
    try {
      await enqueueWelcomeEmails(USERS, options);
      await enqueueWelcomeEmails(USERS, options); // the repeated signup
      expect(await queue.getWaitingCount()).toBe(3);
      const mail = recordingMailer("flaky@example.com");
      const worker = startEmailWorker(mail.mailer, options);
      try {
        await waitUntil(() => mail.sent.length >= 3);
      } finally {
        await worker.close();
      }
      const counts = await queue.getJobCounts("waiting", "active", "delayed", "failed", "completed");
      expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0 });
      results.bullmq = mail.record();
      retryGaps.bullmq = mail.retryGapMs();
    } finally {
      await queue.obliterate({ force: true });
      await queue.close();
    }
  });

  it("OmniRelay version: runs against the workspace packages, across a restart of the node", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "omnirelay-guide-"));
    const { startEmailNode } = await load<OmniServer>("omnirelay/server.ts");
    const { enqueueWelcomeEmails } = await load<OmniProducer>("omnirelay/producer.ts");
    const { startEmailWorker } = await load<OmniWorker>("omnirelay/worker.ts");
    const stats = async (url: string) => {
      const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), namespace: "email" });
      try {
        return await client.stats();
      } finally {
        await client.close();
      }
    };
    try {
      const first = await startEmailNode({ dataDir });
      try {
        await enqueueWelcomeEmails(USERS, { url: first.url });
        await enqueueWelcomeEmails(USERS, { url: first.url }); // the repeated signup
        expect((await stats(first.url)).pendingCount).toBe(3);
      } finally {
        await first.stop();
      }
      const node = await startEmailNode({ dataDir }); // a restart: the queue comes back from the log
      try {
        expect((await stats(node.url)).pendingCount).toBe(3);
        const mail = recordingMailer("flaky@example.com");
        const worker = startEmailWorker(mail.mailer, { url: node.url });
        try {
          await waitUntil(() => mail.sent.length >= 3);
        } finally {
          await worker.close();
        }
        const after = await stats(node.url);
        expect({ pending: after.pendingCount, delayed: after.delayedCount, active: after.activeLeaseCount }).toEqual({
          pending: 0,
          delayed: 0,
          active: 0,
        });
        expect(after.deadLetterCount).toBe(0);
        results.omnirelay = mail.record();
        retryGaps.omnirelay = mail.retryGapMs();
      } finally {
        await node.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("both versions send the same emails, once each, with the same retries", () => {
    expect(results.bullmq).toBeDefined();
    expect(results.omnirelay).toEqual(results.bullmq);
    expect(results.bullmq!.sent.map((m) => m.to)).toEqual(USERS.map((u) => u.to));
    expect(results.bullmq!.calls).toEqual(EXPECTED_CALLS);
    // Both back off 1 s before the first retry (BullMQ's exponential delay 1000, OmniRelay's initialDelayMs 1000).
    expect(retryGaps.bullmq).toBeGreaterThanOrEqual(950);
    expect(retryGaps.omnirelay).toBeGreaterThanOrEqual(950);
  });
});
