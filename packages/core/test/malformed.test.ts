import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { payload, startServer } from "./http-helpers.js";

/** mulberry32: a seeded PRNG so a failure can be replayed. */
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const verbs = ["enqueue", "lease", "heartbeat", "complete", "fail", "restore", "redrive", "deadletters"];
const junkValues: unknown[] = [null, 0, -1, 1.5, "", " ", "x", true, [], {}, [1, 2], { a: 1 }, 1e308];

function malformed(rand: () => number): {
  procedure?: string;
  body: string | Buffer;
  headers?: Record<string, string>;
} {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const verb = pick(verbs);
  switch (Math.floor(rand() * 9)) {
    case 0: // broken JSON
      return {
        procedure: `resourcelease::${verb}`,
        body: pick(["{", '{"payload":', "nul", "[1,", "{'a':1}", "\u0000\u0001", "{}}"]),
      };
    case 1: // not an object
      return { procedure: `resourcelease::${verb}`, body: JSON.stringify(pick([[], 1, "s", true, [{}]])) };
    case 2: // unknown procedure
      return { procedure: pick(["resourcelease::explode", "other::lease", "::", "resourcelease::", "x"]), body: "{}" };
    case 3: {
      // a payload with a missing or wrong-typed field
      const p: Record<string, unknown> = { ...payload("a") };
      const junk: Record<string, unknown[]> = {
        resourceType: [null, 0, -1, true, [], {}, "", " "],
        resourceId: [null, 0, true, [], {}, ""],
        partitionKey: [null, 1.5, false, [1], "  "],
        payloadEncoding: [null, 7, [], {}, ""],
        attributes: [0, "x", true, [1, 2], { a: 1 }, { b: null }],
        body: [0, true, [], {}, { a: 1 }, "!!not base64!!"],
        requestId: [0, true, [], {}],
      };
      const key = pick(Object.keys(junk));
      if (rand() < 0.3 && ["resourceType", "resourceId", "partitionKey", "payloadEncoding"].includes(key))
        delete p[key];
      else p[key] = pick(junk[key]!);
      return {
        procedure: "resourcelease::enqueue",
        body: JSON.stringify(rand() < 0.5 ? { payload: p } : { payloads: [payload("ok"), p] }),
      };
    }
    case 4: {
      // a token with a wrong or missing field
      const t: Record<string, unknown> = { sequenceId: 1, attempt: 1, leaseId: "l", fencingToken: 1 };
      const key = pick(Object.keys(t));
      t[key] = pick([null, -1, 0, "1", 1.5, [], {}]);
      return {
        procedure: `resourcelease::${pick(["heartbeat", "complete", "fail"])}`,
        body: JSON.stringify({ ownershipToken: rand() < 0.2 ? pick(junkValues) : t }),
      };
    }
    case 5: // lease / fail / redrive argument of the wrong type or range
      return pick([
        {
          procedure: "resourcelease::lease",
          body: JSON.stringify({ waitMs: pick([-1, "five", 1.5, [], 2 ** 53, 1e300]) }),
        },
        { procedure: "resourcelease::lease", body: JSON.stringify({ maxItems: pick([0, -3, "two", 1e9, {}]) }) },
        { procedure: "resourcelease::lease", body: JSON.stringify({ peerId: pick([1, [], {}]) }) },
        {
          procedure: "resourcelease::redrive",
          body: JSON.stringify({ sequenceIds: pick(["1", [0], [-1], ["a"], {}]) }),
        },
        { procedure: "resourcelease::deadletters", body: JSON.stringify({ limit: pick([0, -1, "x", 1e9]) }) },
        {
          procedure: "resourcelease::restore",
          body: JSON.stringify({ items: pick(["x", [null], [{}], [{ payload: payload("r") }], {}]) }),
        },
      ]);
    case 6: // huge body
      return { procedure: "resourcelease::enqueue", body: Buffer.alloc(70_000 + Math.floor(rand() * 100_000), 0x61) };
    case 7: // bad headers
      return {
        procedure: pick(["resourcelease::lease", "resourcelease::drain"]),
        body: "{}",
        headers:
          rand() < 0.5
            ? { "rpc-ttl-ms": pick(["-5", "abc", "1.5", "1e3", "0x10", ""]) }
            : { "rpc-deadline": pick(["0", "42", "Dec 25 1999", "2026-01-01", "2026-01-01T00:00:00", "soon"]) },
      };
    default: // missing procedure header
      return { body: "{}" };
  }
}

function send(url: URL, m: ReturnType<typeof malformed>): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(m.procedure !== undefined ? { "rpc-procedure": m.procedure } : {}),
          ...m.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            resolve({ status: res.statusCode ?? 0, json: { raw: text } });
          }
        });
      },
    );
    req.on("error", reject);
    req.end(m.body);
  });
}

describe("1,000 malformed requests", () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer({ maxBodyBytes: 64 * 1024 });
  });
  afterAll(async () => {
    await server.close();
  });

  it("each gets a documented 4xx with a code; the server stays up and the queue is unchanged", async () => {
    const client = server.client();
    await client.enqueue(payload("keep"));
    const before = server.queue.snapshot();
    const rand = prng(42);
    const url = new URL(server.url);
    const seen = new Map<number, number>();
    for (let i = 0; i < 1000; i++) {
      const m = malformed(rand);
      const r = await send(url, m);
      seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
      const context = `request ${i}: ${m.procedure} ${String(m.body).slice(0, 120)}`;
      expect([400, 404, 412, 413, 501], context).toContain(r.status);
      expect(typeof r.json.code, context).toBe("string");
      expect(r.json.code.length, context).toBeGreaterThan(0);
      expect(r.json.status, context).toMatch(/^[A-Z_]+$/);
    }
    expect(seen.get(400)).toBeGreaterThan(500);
    expect(server.queue.snapshot()).toEqual(before);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await client.lease())[0]?.payload.resourceId).toBe("keep");
  });
});
