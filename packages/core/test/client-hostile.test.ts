import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes, type OmniRelayError, ResourceLeaseClient, type ResourceLeaseClientOptions } from "../src/index.js";
import { closeHostile, keepClient, listenHostile } from "./hostile-http.js";

// ResourceLeaseClient facing a broken or hostile dispatcher (a hand-written node:http server on 127.0.0.1): paging
// that never ends, answers that break their verb's contract, and not_owner answers naming hosts it was not given.

/** One request as the server saw it. */
interface Seen {
  readonly procedure: string;
  readonly authorization: string | undefined;
  readonly body: Record<string, unknown>;
}

type Answer = (seen: Seen) => { status?: number; body: unknown };

afterEach(closeHostile);

/** A server answering each call with `answer` (JSON), recording what it was sent. */
async function hostile(answer: Answer): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const url = await listenHostile((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const one: Seen = {
        procedure: String(req.headers["rpc-procedure"]),
        authorization: req.headers.authorization,
        body: text ? JSON.parse(text) : {},
      };
      seen.push(one);
      const { status = 200, body } = answer(one);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  });
  return { url, seen };
}

function clientOf(options: Omit<ResourceLeaseClientOptions, "timeoutMs"> & { timeoutMs?: number }) {
  return keepClient(new ResourceLeaseClient({ timeoutMs: 1_000, ...options }));
}

/** The error a call rejects with within `ms`; fails the test when it resolves or is still running. */
async function rejection(call: Promise<unknown>, ms = 2_500): Promise<OmniRelayError> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms`)), ms);
  });
  try {
    const value = await Promise.race([call, late]);
    throw new Error(`resolved with ${JSON.stringify(value)}`);
  } catch (error) {
    if (error instanceof Error && error.name !== "OmniRelayError") throw error;
    return error as OmniRelayError;
  } finally {
    clearTimeout(timer);
  }
}

const payload = { resourceType: "t", resourceId: "r", partitionKey: "p", payloadEncoding: "json" };
const token = { sequenceId: 1, attempt: 1, leaseId: "lease-abc", fencingToken: 9 };
const schedule = (id: string) => ({
  id,
  cron: "* * * * *",
  timezone: "UTC",
  payload,
  backfill: "skip",
  backfillWindowMs: 86_400_000,
  upsertedAt: new Date(0).toISOString(),
});
const pending = (sequenceId: number) => ({ payload, sequenceId, attempt: 1, enqueuedAt: new Date(0).toISOString() });

describe("listSchedules: paging must move forward", () => {
  it("well-formed pages are all read; a next that cycles (a, b, a, …) rejects omnirelay.response.invalid at once", async () => {
    const pages: Record<string, { schedules: unknown[]; next?: string }> = {
      "": { schedules: [schedule("a"), schedule("b")], next: "b" },
      b: { schedules: [schedule("c")], next: "c" },
      c: { schedules: [] },
    };
    const good = await hostile(({ body }) => ({ body: pages[String(body.after ?? "")] }));
    const listed = await clientOf({ endpoints: [good.url] }).listSchedules();
    expect(listed.map((s) => s.id)).toEqual(["a", "b", "c"]);
    const { url, seen } = await hostile(({ body }) => ({
      body: { schedules: [schedule("s")], next: body.after === "s" ? "a" : "s" },
    }));
    const error = await rejection(clientOf({ endpoints: [url] }).listSchedules());
    expect(error.code).toBe(ErrorCodes.rpc.responseInvalid);
    expect(seen.length).toBeLessThanOrEqual(2);
  });

  it("ids out of order, or a next on an empty page, reject omnirelay.response.invalid", async () => {
    const repeated = await hostile(() => ({ body: { schedules: [schedule("s1"), schedule("s1")] } }));
    expect((await rejection(clientOf({ endpoints: [repeated.url] }).listSchedules())).code).toBe(
      ErrorCodes.rpc.responseInvalid,
    );
    let n = 0;
    const empty = await hostile(() => ({ body: { schedules: [], next: `n${String(++n).padStart(6, "0")}` } }));
    expect((await rejection(clientOf({ endpoints: [empty.url] }).listSchedules())).code).toBe(
      ErrorCodes.rpc.responseInvalid,
    );
    expect(empty.seen.length).toBe(1);
  });

  it("timeoutMs bounds the whole listing: pages that move forward without end stop at the deadline", async () => {
    let n = 0;
    const { url, seen } = await hostile(() => {
      const id = `s${String(++n).padStart(8, "0")}`;
      return { body: { schedules: [schedule(id)], next: id } };
    });
    const started = Date.now();
    const error = await rejection(clientOf({ endpoints: [url] }).listSchedules({ timeoutMs: 300 }));
    expect(error.code).toBe(ErrorCodes.rpc.deadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(seen.length).toBeGreaterThan(1);
  });
});

describe("drain: bounded", () => {
  it("pages that always say more remain stop at the deadline, timeoutMs bounding the whole drain", async () => {
    const { url, seen } = await hostile(() => ({ body: { items: [pending(1), pending(2)], remainingCount: 1 } }));
    const started = Date.now();
    const error = await rejection(clientOf({ endpoints: [url] }).drain({ timeoutMs: 300 }));
    expect(error.code).toBe(ErrorCodes.rpc.deadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(seen.length).toBeGreaterThan(1);
  });

  it("stops after the page that reaches maxItems, and at a page with no items", async () => {
    let next = 0;
    const { url, seen } = await hostile(() => ({
      body: { items: Array.from({ length: 10 }, () => pending(++next)), remainingCount: 5 },
    }));
    const items = await clientOf({ endpoints: [url] }).drain({ maxItems: 25 });
    expect([items.length, seen.length]).toEqual([30, 3]);
    const empty = await hostile(() => ({ body: { items: [], remainingCount: 7 } }));
    expect(await clientOf({ endpoints: [empty.url] }).drain()).toEqual([]);
    expect(empty.seen.length).toBe(1);
  });
});

describe("answers that break their verb's contract", () => {
  const stats = { pendingCount: 0, activeLeaseCount: 0 };

  it("enqueue answered without a sequence id, enqueueMany with fewer ids than items", async () => {
    const { url } = await hostile(() => ({ body: { sequenceIds: [7], duplicates: [], stats } }));
    const client = clientOf({ endpoints: [url] });
    expect((await client.enqueueMany([payload])).sequenceIds).toEqual([7]);
    expect((await rejection(client.enqueueMany([payload, payload, payload]))).code).toBe(
      ErrorCodes.rpc.responseInvalid,
    );
    const none = await hostile(() => ({ body: { sequenceIds: [], duplicates: [], stats } }));
    expect((await rejection(clientOf({ endpoints: [none.url] }).enqueue(payload))).code).toBe(
      ErrorCodes.rpc.responseInvalid,
    );
  });

  it.each([
    ["{success:false}", { success: false }],
    ["{}", {}],
  ])("complete answered %s rejects omnirelay.response.invalid", async (_name, body) => {
    const { url } = await hostile(() => ({ body }));
    expect((await rejection(clientOf({ endpoints: [url] }).complete(token))).code).toBe(ErrorCodes.rpc.responseInvalid);
  });

  it("complete answered {success:true} resolves; completeMany needs one result per token", async () => {
    const ok = await hostile(() => ({ body: { success: true } }));
    await expect(clientOf({ endpoints: [ok.url] }).complete(token)).resolves.toBeUndefined();
    const short = await hostile(() => ({ body: { success: true, results: [{ success: true }] } }));
    expect((await rejection(clientOf({ endpoints: [short.url] }).completeMany([token, token]))).code).toBe(
      ErrorCodes.rpc.responseInvalid,
    );
  });
});

describe("not_owner naming a host the client was not given", () => {
  const notOwner = (ownerUrl: string) => () => ({
    status: 412,
    body: {
      status: "FAILED_PRECONDITION",
      code: ErrorCodes.resourceLease.notOwner,
      message: "moved",
      metadata: { owner: "x", ownerUrl },
    },
  });

  it("is not followed: no credentials or body go there, and the caller gets the not_owner answer", async () => {
    const other = await hostile(() => ({ body: { success: true } }));
    const node = await hostile(notOwner(other.url));
    const client = clientOf({ endpoints: [node.url], headers: { authorization: "Bearer SECRET" } });
    const error = await rejection(client.complete(token));
    expect([error.code, error.metadata.ownerUrl]).toEqual([ErrorCodes.resourceLease.notOwner, other.url]);
    expect(other.seen).toEqual([]);
    expect([client.endpoints, client.endpoint]).toEqual([[node.url], node.url]);
    expect(node.seen.length).toBe(1);
  });

  it("a listed owner is followed; an unlisted one only when followOwner accepts it", async () => {
    const owner = await hostile(() => ({ body: { success: true } }));
    const node = await hostile(notOwner(owner.url));
    const listed = clientOf({ endpoints: [node.url, owner.url], headers: { authorization: "Bearer T" } });
    await listed.complete(token);
    expect(listed.endpoint).toBe(owner.url);
    const allowed = clientOf({ endpoints: [node.url], followOwner: (url) => url === owner.url });
    await allowed.complete(token);
    expect(allowed.endpoints).toEqual([node.url, owner.url]);
    expect(owner.seen.map((s) => [s.procedure, s.authorization])).toEqual([
      ["resourcelease::complete", "Bearer T"],
      ["resourcelease::complete", undefined],
    ]);
    const refused = clientOf({
      endpoints: [node.url],
      followOwner: () => {
        throw new Error("no");
      },
    });
    expect((await rejection(refused.complete(token))).code).toBe(ErrorCodes.resourceLease.notOwner);
    expect(owner.seen.length).toBe(2);
  });
});
