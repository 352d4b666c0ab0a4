import {
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  isOmniRelayError,
  ResourceLeaseClient,
  ResourceLeaseProcedures,
  type ResourceLeaseQueueStats,
  type UnaryOutbound,
} from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { authMiddleware, mintToken, TOKEN_TTL_MS, TokenOutbound } from "./auth.js";

const secret = new TextEncoder().encode("mesh-demo-unit-test-secret-of-at-least-32-bytes");

/** A real dispatcher behind the demo's auth middleware, over real HTTP; records the principal each call bound. */
async function node() {
  const dispatcher = new Dispatcher({ service: "auth-unit", inboundMiddleware: [authMiddleware(secret)] });
  const principals: Array<string | undefined> = [];
  dispatcher.register({
    name: "resourcelease::stats",
    definition: ResourceLeaseProcedures.stats,
    handler: async (_request, meta) => {
      principals.push(meta.principal);
      return { pendingCount: 0, activeLeaseCount: 0 } as ResourceLeaseQueueStats;
    },
  });
  const inbound = new HttpInbound({ dispatcher });
  const { url } = await inbound.start();
  return { url, principals, close: () => inbound.close() };
}

describe("mesh demo tokens", () => {
  it("the dispatcher accepts a minted token, and refuses an expired one and one from another secret", async () => {
    const n = await node();
    const call = async (token: string) => {
      const client = new ResourceLeaseClient({
        outbound: new HttpOutbound({ url: n.url }),
        headers: { authorization: `Bearer ${token}` },
      });
      try {
        await client.stats();
        return n.principals.at(-1);
      } catch (error) {
        return isOmniRelayError(error) ? `${error.code} ${error.metadata.reason}` : String(error);
      } finally {
        await client.close();
      }
    };
    try {
      expect(await call(mintToken(secret, "mesh-seeder"))).toBe("mesh-seeder");
      const long = Date.now() - 2 * TOKEN_TTL_MS;
      expect(await call(mintToken(secret, "mesh-seeder", { nowMs: long }))).toBe(
        "omnirelay.auth.invalid_token expired",
      );
      const other = new TextEncoder().encode("another-mesh-secret-of-at-least-32-bytes!!");
      expect(await call(mintToken(other, "mesh-seeder"))).toBe("omnirelay.auth.invalid_token signature_invalid");
    } finally {
      await n.close();
    }
  });

  it("TokenOutbound signs every call and mints a new token a minute before the old one expires", async () => {
    const n = await node();
    let now = Date.now();
    const seen: string[] = [];
    const inner = new HttpOutbound({ url: n.url });
    const recording: UnaryOutbound = {
      call: (definition, request) => {
        seen.push(request.meta.headers.authorization ?? "");
        return inner.call(definition, request);
      },
      close: () => inner.close(),
    };
    const client = new ResourceLeaseClient({
      outbound: new TokenOutbound({ inner: recording, secret, subject: "mesh-worker-a", now: () => now }),
    });
    try {
      await client.stats();
      expect(n.principals.at(-1)).toBe("mesh-worker-a");
      await client.stats();
      now += TOKEN_TTL_MS - 30_000; // inside the last minute: a new token (and the dispatcher still accepts it)
      await client.stats();
      expect(seen[0]).toMatch(/^Bearer /);
      expect(seen[1]).toBe(seen[0]);
      expect(seen[2]).not.toBe(seen[0]);
    } finally {
      await client.close();
      await n.close();
    }
  });
});
