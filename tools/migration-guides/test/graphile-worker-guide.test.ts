import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpOutbound, ResourceLeaseClient } from "@omnirelay/core";
import pg from "pg";
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

type Users = typeof USERS;
type Mailer = ReturnType<typeof recordingMailer>["mailer"];
interface Closable {
  close(): Promise<void>;
}
interface PgOptions {
  connectionString: string;
  schema?: string;
}
interface GraphileProducer {
  enqueueWelcomeEmails(users: Users, options: PgOptions): Promise<void>;
}
interface GraphileWorker {
  startEmailWorker(mailer: Mailer, options: PgOptions): Promise<Closable>;
}
interface OmniServer {
  startJobsNode(options: { dataDir: string }): Promise<{ url: string; stop(): Promise<void> }>;
}
interface OmniProducer {
  enqueueWelcomeEmails(users: Users, options: { url: string }): Promise<void>;
}
interface OmniWorker {
  startEmailWorker(mailer: Mailer, options: { url: string }): Closable;
}

/** The machine's PostgreSQL (trust auth), database `test`. */
const connectionString = process.env.GUIDES_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

describe("docs/guides/migrating-from-graphile-worker.md", () => {
  const guide = extractGuide("migrating-from-graphile-worker.md");
  const load = <T>(path: string) => import(join(guide.dir, path)) as Promise<T>;
  const results: Record<string, MailerRecord> = {};
  const retryGaps: Record<string, number> = {};
  afterAll(() => guide.dispose());

  it("holds the worked example for both queues", () => {
    const targets = guide.blocks.map((b) => b.target);
    for (const file of [
      "email.ts",
      "graphile-worker/producer.ts",
      "graphile-worker/worker.ts",
      "omnirelay/worker.ts",
    ]) {
      expect(targets).toContain(file);
    }
  });

  it("type-checks under the repository's strict compiler options", async () => {
    const result = await typecheck(guide.dir);
    expect(result.output).toBe("");
    expect(result.ok).toBe(true);
  });

  it("graphile-worker version: runs against PostgreSQL, in a schema of its own", async () => {
    const schema = `guide_${randomUUID().replaceAll("-", "")}`;
    const options = { connectionString, schema };
    const { enqueueWelcomeEmails } = await load<GraphileProducer>("graphile-worker/producer.ts");
    const { startEmailWorker } = await load<GraphileWorker>("graphile-worker/worker.ts");
    const db = new pg.Client({ connectionString });
    await db.connect();
    const jobs = async () => (await db.query(`select count(*)::int as n from "${schema}"._private_jobs`)).rows[0].n;
    try {
      await enqueueWelcomeEmails(USERS, options);
      await enqueueWelcomeEmails(USERS, options); // the repeated signup
      expect(await jobs()).toBe(3);
      const mail = recordingMailer("flaky@example.com");
      const worker = await startEmailWorker(mail.mailer, options);
      try {
        await waitUntil(() => mail.sent.length >= 3);
        await waitUntil(async () => (await jobs()) === 0); // completions are written after the task resolves
      } finally {
        await worker.close();
      }
      expect(await jobs()).toBe(0);
      results.graphile = mail.record();
      retryGaps.graphile = mail.retryGapMs();
    } finally {
      await db.query(`drop schema if exists "${schema}" cascade`);
      await db.end();
    }
  });

  it("OmniRelay version: runs against the workspace packages, across a restart of the node", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "omnirelay-guide-"));
    const { startJobsNode } = await load<OmniServer>("omnirelay/server.ts");
    const { enqueueWelcomeEmails } = await load<OmniProducer>("omnirelay/producer.ts");
    const { startEmailWorker } = await load<OmniWorker>("omnirelay/worker.ts");
    const stats = async (url: string) => {
      const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), namespace: "jobs" });
      try {
        return await client.stats();
      } finally {
        await client.close();
      }
    };
    try {
      const first = await startJobsNode({ dataDir });
      try {
        await enqueueWelcomeEmails(USERS, { url: first.url });
        await enqueueWelcomeEmails(USERS, { url: first.url }); // the repeated signup
        expect((await stats(first.url)).pendingCount).toBe(3);
      } finally {
        await first.stop();
      }
      const node = await startJobsNode({ dataDir }); // a restart: the queue comes back from the log
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
        expect([after.pendingCount, after.delayedCount, after.activeLeaseCount, after.deadLetterCount]).toEqual([
          0, 0, 0, 0,
        ]);
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
    expect(results.graphile).toBeDefined();
    expect(results.omnirelay).toEqual(results.graphile);
    expect(results.graphile!.sent.map((m) => m.to)).toEqual(USERS.map((u) => u.to));
    expect(results.graphile!.calls).toEqual(EXPECTED_CALLS);
    // Both wait e^1 s ≈ 2.7 s before the first retry (graphile-worker's formula, reproduced by retryBackoff).
    expect(retryGaps.graphile).toBeGreaterThanOrEqual(2_600);
    expect(retryGaps.omnirelay).toBeGreaterThanOrEqual(2_600);
  });
});
