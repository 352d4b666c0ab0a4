import { createLocalJWKSet } from "jose";
import { describe, expect, it } from "vitest";
import type { TransportSecurity } from "../dispatcher/types.js";
import { PrincipalBindingMiddleware, type PrincipalBindingMiddlewareOptions } from "./principal-binding.js";
import {
  bearer,
  hsOptions,
  hsToken,
  optionError,
  principalSeen,
  rejection,
  secret,
} from "./principal-binding-test-helpers.js";

describe("PrincipalBindingMiddleware: anonymous calls once authentication is configured", () => {
  it("refuses calls without a principal by default, with every kind of authenticator", async () => {
    const configs: Array<[string, PrincipalBindingMiddlewareOptions]> = [
      ["jwt", { jwt: { key: secret } }],
      ["client certificates (the default)", {}],
      ["trusted proxy", { trustedProxies: ["10.0.0.9"], acceptClientCertificates: false }],
    ];
    for (const [name, options] of configs) {
      expect(await rejection(options, { procedure: "resourcelease::drain" }), name).toMatchObject({
        status: "unauthenticated",
        code: "omnirelay.auth.required",
        metadata: { procedure: "resourcelease::drain" },
      });
    }
    const proxied = await principalSeen(configs[2]![1], {
      headers: { "x-client-principal": "ops" },
      security: { clientCertificateVerified: false, remoteAddress: "10.0.0.9" },
    });
    expect(proxied?.principal).toBe("ops");
  });

  it("lets anonymous callers reach only the allow-listed procedures", async () => {
    const options = { jwt: { key: secret }, allowAnonymous: ["RESOURCELEASE::STATS", "health::*"] };
    expect((await principalSeen(options, { procedure: "resourcelease::stats" }))?.principal).toBeUndefined();
    expect(await rejection(options, { procedure: "resourcelease::lease" })).toMatchObject({
      code: "omnirelay.auth.required",
    });
    // A caller that presents a bad token is refused even on an open procedure.
    expect(await rejection(options, { procedure: "resourcelease::stats", headers: bearer("junk") })).toMatchObject({
      code: "omnirelay.auth.invalid_token",
    });
    // A good token is still bound there.
    const token = await hsToken({ sub: "w" });
    expect((await principalSeen(options, { headers: bearer(token) }))?.principal).toBe("w");
  });

  it("lets anonymous calls through only with requireAuthentication: false", async () => {
    const meta = await principalSeen({ jwt: { key: secret }, requireAuthentication: false }, {});
    expect(meta?.principal).toBeUndefined();
    expect(await rejection({ jwt: { key: secret }, requireAuthentication: true }, {})).toMatchObject({
      code: "omnirelay.auth.required",
    });
  });

  it("refuses a configuration in which nobody could ever authenticate", () => {
    expect(() => new PrincipalBindingMiddleware({ acceptClientCertificates: false })).toThrow(
      optionError("requireAuthentication"),
    );
    expect(
      () => new PrincipalBindingMiddleware({ acceptClientCertificates: false, requireAuthentication: false }),
    ).not.toThrow();
    expect(() => new PrincipalBindingMiddleware({ requireAuthentication: "yes" as never })).toThrow(
      optionError("requireAuthentication"),
    );
    expect(() => new PrincipalBindingMiddleware({ allowAnonymous: [""] })).toThrow(optionError("allowAnonymous"));
  });
});

describe("PrincipalBindingMiddleware: certificates and proxies", () => {
  const verified = (subject: string, remoteAddress = "10.0.0.9"): TransportSecurity => ({
    clientCertificateVerified: true,
    clientCertificateSubject: subject,
    remoteAddress,
  });

  it("prefers the verified certificate subject over a JWT and a proxy header", async () => {
    const token = await hsToken({ sub: "jwt-user" });
    const meta = await principalSeen(
      { ...hsOptions, trustedProxies: ["10.0.0.9"] },
      {
        headers: { ...bearer(token), "x-client-principal": "header-user" },
        security: verified("cert-user"),
      },
    );
    expect(meta?.principal).toBe("cert-user");
  });

  it("ignores unverified certificates and certificates when disabled", async () => {
    const token = await hsToken({ sub: "jwt-user" });
    const unverified = { clientCertificateVerified: false, clientCertificateSubject: "cert-user" };
    expect((await principalSeen(hsOptions, { headers: bearer(token), security: unverified }))?.principal).toBe(
      "jwt-user",
    );
    const disabled = { ...hsOptions, acceptClientCertificates: false };
    expect(
      (await principalSeen(disabled, { headers: bearer(token), security: verified("cert-user") }))?.principal,
    ).toBe("jwt-user");
    expect(await rejection(hsOptions, { security: unverified })).toMatchObject({ code: "omnirelay.auth.required" });
  });

  it("ignores and strips a spoofed principal header from an untrusted address", async () => {
    const spoofed = {
      headers: { "x-client-principal": "admin", "rpc-principal": "admin", other: "kept" },
      security: { clientCertificateVerified: false, remoteAddress: "203.0.113.7" },
    };
    expect(await rejection({ trustedProxies: ["127.0.0.1"] }, spoofed)).toMatchObject({
      code: "omnirelay.auth.required",
    });
    const meta = await principalSeen({ trustedProxies: ["127.0.0.1"], requireAuthentication: false }, spoofed);
    expect(meta?.principal).toBeUndefined();
    expect(meta?.headers).toEqual({ other: "kept" });
  });

  it("honours a principal header from a trusted proxy, including its IPv4-mapped IPv6 form", async () => {
    for (const remoteAddress of ["127.0.0.1", "::ffff:127.0.0.1", "::FFFF:7f00:1"]) {
      const meta = await principalSeen(
        { trustedProxies: ["127.0.0.1", "2001:db8::1"] },
        {
          headers: { "x-client-principal": "  ", "x-mtls-subject": "CN=mesh-node" },
          security: { clientCertificateVerified: false, remoteAddress },
        },
      );
      expect(meta?.principal).toBe("CN=mesh-node");
    }
    const v6 = await principalSeen(
      { trustedProxies: ["2001:0db8:0:0::1"] },
      {
        headers: { "rpc-principal": "p" },
        security: { clientCertificateVerified: false, remoteAddress: "2001:db8::1" },
      },
    );
    expect(v6?.principal).toBe("p");
  });

  it("replaces a principal that something upstream put on the meta", async () => {
    expect(await rejection({}, { principal: "smuggled" })).toMatchObject({ code: "omnirelay.auth.required" });
    const meta = await principalSeen({ requireAuthentication: false }, { principal: "smuggled" });
    expect(meta?.principal).toBeUndefined();
  });

  it("validates its options", () => {
    expect(() => new PrincipalBindingMiddleware({ trustedProxies: ["10.0.0.0/8"] })).toThrow(
      optionError("trustedProxies"),
    );
    expect(() => new PrincipalBindingMiddleware({ jwt: {} })).toThrow(optionError("jwt"));
    expect(
      () => new PrincipalBindingMiddleware({ jwt: { key: secret, jwks: createLocalJWKSet({ keys: [] }) } }),
    ).toThrow(optionError("jwt"));
    expect(() => new PrincipalBindingMiddleware({ jwt: { key: secret, issuer: " " } })).toThrow(
      optionError("jwt.issuer"),
    );
    expect(() => new PrincipalBindingMiddleware({ principalHeaders: [" "] })).toThrow(optionError("principalHeaders"));
  });
});
