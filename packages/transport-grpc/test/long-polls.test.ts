import { createHmac } from "node:crypto";
import type { UnaryInboundMiddleware } from "@omnirelay/core";
import { PrincipalBindingMiddleware, RateLimitingMiddleware } from "@omnirelay/core/middleware";
import { afterEach, describe, expect, it } from "vitest";
import { Cleanup, componentStack, rawRpc } from "./harness.js";

const cleanup = new Cleanup();
afterEach(() => cleanup.closeAll());
const call = rawRpc;
const payload = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

/** An HS256 JWT for `subject`, built by hand (no JOSE library in this package). */
function jwt(secret: string, subject: string): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const exp = Math.floor(Date.now() / 1000) + 300;
  const unsigned = `${part({ alg: "HS256", typ: "JWT" })}.${part({ sub: subject, exp })}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

describe("long polls over gRPC", () => {
  it("260 idle long polls from one anonymous address cannot starve an authenticated worker's long poll", async () => {
    const secret = "a-test-secret-of-at-least-32-bytes!!";
    let arrived = 0;
    const counting: UnaryInboundMiddleware = {
      handle: (request, next) => {
        arrived++;
        return next(request);
      },
    };
    const { component, client } = await componentStack(cleanup, {
      empty: true,
      middleware: [
        counting,
        // Anonymous callers may lease here: the flood is anonymous, the worker is not.
        new PrincipalBindingMiddleware({
          jwt: { key: new TextEncoder().encode(secret) },
          requireAuthentication: false,
        }),
        new RateLimitingMiddleware(),
      ],
    });
    let answered = 0;
    const idle = Array.from({ length: 260 }, () =>
      call(client, "lease", { request: { waitMs: 20_000 } }).then((r) => {
        answered++;
        return r;
      }),
    );
    const until = async (condition: () => boolean) => {
      for (const started = Date.now(); !condition(); await new Promise((resolve) => setTimeout(resolve, 10))) {
        if (Date.now() - started > 15_000) throw new Error("timed out");
      }
    };
    await until(() => arrived === 260);
    await until(() => answered === 228); // over the caller's share: answered at once, empty
    const worker = call(client, "lease", {
      request: { waitMs: 20_000 },
      metadata: { authorization: `Bearer ${jwt(secret, "worker-1")}` },
    });
    await until(() => arrived === 261);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(answered).toBe(228);
    await component.queue.enqueueMany(Array.from({ length: 300 }, (_, i) => payload(`item-${i}`)));
    const got = await worker;
    expect(got.error).toBeUndefined();
    expect(got.value?.grant).toBeDefined();
    const results = await Promise.all(idle);
    expect(results.every((r) => r.error === undefined)).toBe(true);
    expect(results.filter((r) => r.value?.grant !== undefined)).toHaveLength(32);
    expect(component.queue.snapshot().active.filter((l) => l.principal === "worker-1")).toHaveLength(1);
  });

  it("a waitMs above the queue's maxWaitMs is cut to it, not refused", async () => {
    const { client } = await componentStack(cleanup, { empty: true, queueOptions: { maxWaitMs: 200 } });
    const started = Date.now();
    const answers = await Promise.all(
      [201, 3_600_000, 1e12].map((waitMs) => call(client, "lease", { request: { waitMs } })),
    );
    for (const r of answers) {
      expect(r.error).toBeUndefined();
      expect(r.value?.grant).toBeUndefined();
    }
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    const negative = await call(client, "lease", { request: { waitMs: -1 } });
    expect(negative.error?.metadata.get("omnirelay-error-code")).toEqual(["resourcelease.argument.invalid"]);
  });
});
