import { createHmac } from "node:crypto";
import {
  Dispatcher,
  isOmniRelayError,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type UnaryInboundMiddleware,
} from "@omnirelay/core";
import { AuthorizationMiddleware, PrincipalBindingMiddleware } from "@omnirelay/core/middleware";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcInbound, GrpcOutbound } from "../src/index.js";
import { Cleanup } from "./harness.js";

const secret = "grpc-errors-test-secret-at-least-32-bytes";
const item = (id: string) => ({ resourceType: "t", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

/** An HS256 JWT made with node:crypto. */
function jwt(sub: string): string {
  const enc = (v: object) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = `${enc({ alg: "HS256", typ: "JWT" })}.${enc({ sub, exp: Math.floor(Date.now() / 1000) + 300 })}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

/** Test-only behaviour keyed by the caller: wait for the deadline, or throw something unexpected. */
const misbehave: UnaryInboundMiddleware = {
  async handle(req, next) {
    if (req.meta.caller === "slow") {
      await new Promise((resolve) => req.meta.signal.addEventListener("abort", resolve, { once: true }));
    }
    if (req.meta.caller === "boom") throw new Error("secret detail");
    return next(req);
  },
};

const statusOf = (e: unknown) => (isOmniRelayError(e) ? `${e.status} ${e.code}` : `not an OmniRelayError: ${e}`);

describe("every error status over gRPC, with its specific code", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  async function stack(middleware: UnaryInboundMiddleware[], capacity = 2) {
    const dispatcher = new Dispatcher({ service: "errors", inboundMiddleware: middleware });
    cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher, { queueOptions: { capacity } }));
    const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
    const { port } = await inbound.start();
    return (options: { caller?: string; token?: string; namespace?: string; timeoutMs?: number } = {}) =>
      cleanup.add(
        new ResourceLeaseClient({
          outbound: new GrpcOutbound({
            address: `127.0.0.1:${port}`,
            ...(options.token ? { metadata: { authorization: `Bearer ${options.token}` } } : {}),
          }),
          ...(options.caller ? { caller: options.caller } : {}),
          ...(options.namespace ? { namespace: options.namespace } : {}),
          ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
        }),
      );
  }

  it("queue and transport errors", async () => {
    const client = await stack([misbehave]);
    const c = client();
    expect(statusOf(await c.enqueue({ ...item("a"), resourceId: " " }).catch((e) => e))).toBe(
      "invalid-argument resourcelease.payload.resource_id_required",
    );
    const forged = { sequenceId: 9, attempt: 1, leaseId: "x", fencingToken: 9 };
    expect(statusOf(await c.heartbeat(forged).catch((e) => e))).toBe("not-found resourcelease.lease.unknown_token");
    await c.enqueue(item("a"));
    const [grant] = await c.lease();
    const dup = { payload: item("z"), sequenceId: 1, attempt: 1, enqueuedAt: Date.now() };
    expect(statusOf(await c.restore([dup]).catch((e) => e))).toBe(
      "already-exists resourcelease.restore.duplicate_item",
    );
    await c.complete(grant!.ownershipToken);
    expect(statusOf(await c.complete(grant!.ownershipToken).catch((e) => e))).toBe(
      "failed-precondition resourcelease.lease.fenced",
    );
    await c.enqueueMany([item("b"), item("c")]);
    expect(statusOf(await c.enqueue(item("d")).catch((e) => e))).toBe("resource-exhausted resourcelease.queue.full");
    expect(
      statusOf(
        await client({ namespace: "nope" })
          .stats()
          .catch((e) => e),
      ),
    ).toBe("unimplemented omnirelay.procedure.not_found");
    expect(
      statusOf(
        await client({ caller: "slow", timeoutMs: 200 })
          .stats()
          .catch((e) => e),
      ),
    ).toMatch(/^deadline-exceeded /);
    const boom = await client({ caller: "boom" })
      .stats()
      .catch((e) => e);
    expect(statusOf(boom)).toBe("internal omnirelay.internal");
    expect(String((boom as Error).message)).not.toContain("secret detail");
    await c.drain();
    expect(statusOf(await c.lease().catch((e) => e))).toBe("unavailable resourcelease.draining");
  });

  it("authentication and authorization errors", async () => {
    const client = await stack([
      new PrincipalBindingMiddleware({ jwt: { key: new TextEncoder().encode(secret) } }),
      new AuthorizationMiddleware({ rules: [{ principals: ["worker-1"], procedures: ["resourcelease::*"] }] }),
    ]);
    expect(
      statusOf(
        await client()
          .stats()
          .catch((e) => e),
      ),
    ).toBe("unauthenticated omnirelay.auth.required");
    expect(
      statusOf(
        await client({ token: "not-a-jwt" })
          .stats()
          .catch((e) => e),
      ),
    ).toBe("unauthenticated omnirelay.auth.invalid_token");
    expect(
      statusOf(
        await client({ token: jwt("intruder") })
          .stats()
          .catch((e) => e),
      ),
    ).toBe("permission-denied omnirelay.auth.forbidden");
    expect((await client({ token: jwt("worker-1") }).stats()).state).toBe("running");
  });
});

describe("restore with renumber over gRPC", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("moves drained items to a node whose ids collide and returns their new ids", async () => {
    const start = async () => {
      const dispatcher = new Dispatcher({ service: "node" });
      cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher));
      const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
      const { port } = await inbound.start();
      return cleanup.add(new ResourceLeaseClient({ outbound: new GrpcOutbound({ address: `127.0.0.1:${port}` }) }));
    };
    const a = await start();
    const b = await start();
    await a.enqueueMany([item("a1"), item("a2")]);
    await b.enqueueMany([item("b1")]);
    const drained = await a.drain();
    expect(statusOf(await b.restore(drained).catch((e) => e))).toBe(
      "already-exists resourcelease.restore.duplicate_item",
    );
    expect(await b.restoreRenumbered(drained)).toEqual({ restoredCount: 2, sequenceIds: [2, 3] });
    const grants = await b.lease({ maxItems: 5 });
    expect(grants.map((g) => g.payload.resourceId)).toEqual(["b1", "a1", "a2"]);
  });
});
