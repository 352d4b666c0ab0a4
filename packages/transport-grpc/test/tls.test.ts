import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Dispatcher, type OmniRelayError, type RequestMeta } from "@omnirelay/core";
import { makeTestPki, type TestPki } from "@omnirelay/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GrpcInbound, type GrpcInboundTlsOptions, GrpcOutbound, type GrpcOutboundTlsOptions } from "../src/index.js";
import { Cleanup, callJson, rejectionOf } from "./harness.js";

describe("TLS and mutual TLS", () => {
  const cleanup = new Cleanup();
  let dir: string;
  let pki: TestPki;
  let seen: RequestMeta[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "omnirelay-grpc-pki-"));
    pki = await makeTestPki(dir, { clientCommonName: "worker-7" });
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  afterEach(() => cleanup.closeAll());

  async function serve(tls: GrpcInboundTlsOptions): Promise<number> {
    seen = [];
    const dispatcher = new Dispatcher({ service: "tls-test" });
    dispatcher.registerJson("resourcelease::stats", async (_body, meta) => {
      seen.push(meta);
      return { pendingCount: 0, activeLeaseCount: 0 };
    });
    const inbound = cleanup.add(new GrpcInbound({ dispatcher, tls }));
    return (await inbound.start()).port;
  }

  function client(port: number, tls: GrpcOutboundTlsOptions, host = "127.0.0.1"): GrpcOutbound {
    return cleanup.add(new GrpcOutbound({ address: `${host}:${port}`, tls, defaultTimeoutMs: 5000 }));
  }

  const mtls = () => ({ key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requireClientCertificate: true });

  it("server TLS: a client trusting the CA gets through, with no client identity", async () => {
    const port = await serve({ key: pki.server.key, cert: pki.server.cert });
    const { json } = await callJson(client(port, { ca: pki.ca }), "resourcelease::stats");
    expect(json).toEqual({ pendingCount: 0, activeLeaseCount: 0 });
    expect(seen[0]!.security).toEqual({ clientCertificateVerified: false, remoteAddress: "127.0.0.1" });
    // The certificate's DNS name works as well as its IP address.
    await callJson(client(port, { ca: pki.ca }, "localhost"), "resourcelease::stats");
    expect(seen).toHaveLength(2);
  });

  it("a client that does not trust the server's CA is refused", async () => {
    const port = await serve({ key: pki.server.key, cert: pki.server.cert });
    const error = (await rejectionOf(
      callJson(client(port, { ca: pki.otherCa }), "resourcelease::stats"),
    )) as OmniRelayError;
    expect(error).toMatchObject({ status: "unavailable", code: "omnirelay.transport.unavailable" });
    expect(seen).toHaveLength(0);
  });

  it("mutual TLS: a call without a client certificate fails", async () => {
    const port = await serve(mtls());
    const error = (await rejectionOf(callJson(client(port, { ca: pki.ca }), "resourcelease::stats"))) as OmniRelayError;
    expect(error).toMatchObject({ status: "unavailable", code: "omnirelay.transport.unavailable" });
    expect(seen).toHaveLength(0);
  });

  it("mutual TLS: a client certificate signed by another CA fails", async () => {
    const port = await serve(mtls());
    const outbound = client(port, { ca: pki.ca, key: pki.otherClient.key, cert: pki.otherClient.cert });
    const error = (await rejectionOf(callJson(outbound, "resourcelease::stats"))) as OmniRelayError;
    expect(error).toMatchObject({ status: "unavailable", code: "omnirelay.transport.unavailable" });
    expect(seen).toHaveLength(0);
  });

  it("mutual TLS: a good certificate reaches the handler as a verified subject", async () => {
    const port = await serve(mtls());
    const outbound = client(port, { ca: pki.ca, key: pki.client.key, cert: pki.client.cert });
    const { json } = await callJson(outbound, "resourcelease::stats");
    expect(json).toEqual({ pendingCount: 0, activeLeaseCount: 0 });
    expect(seen[0]!.security).toEqual({
      clientCertificateVerified: true,
      clientCertificateSubject: "worker-7",
      remoteAddress: "127.0.0.1",
    });
    expect(seen[0]!.principal).toBeUndefined();
  });

  it("rejects TLS options that cannot work", () => {
    const dispatcher = new Dispatcher({ service: "x" });
    expect(
      () =>
        new GrpcInbound({
          dispatcher,
          tls: { key: pki.server.key, cert: pki.server.cert, requireClientCertificate: true },
        }),
    ).toThrow(expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "tls.ca" } }));
    expect(() => new GrpcOutbound({ address: "127.0.0.1:1", tls: { cert: pki.client.cert } })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "tls" } }),
    );
  });
});
