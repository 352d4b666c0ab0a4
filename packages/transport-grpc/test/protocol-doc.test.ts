import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { credentials, status as grpcStatus, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  Dispatcher,
  type ProcedureDefinition,
  ResourceLeaseDispatcherComponent,
  ResourceLeaseProcedures,
} from "@omnirelay/core";
import { requestSite, responseSite } from "@omnirelay/core/wire";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ResourceLeaseServiceClient } from "../src/gen/omnirelay/resourcelease/v1/resourcelease.js";
import { GrpcInbound, resourceLeaseRpcs } from "../src/index.js";

const doc = readFileSync(fileURLToPath(new URL("../../../docs/protocol.md", import.meta.url)), "utf8");
const grpcSection = doc.slice(doc.indexOf("## gRPC"));

interface Example {
  rpc: string;
  data: unknown;
  headers: Record<string, string>;
  kind: "json" | "text";
  expected: string;
}

/** Reads the grpcurl-form examples: a ```grpc block and the ```json / ```text block after it. */
function examples(): Example[] {
  const blocks = [...grpcSection.matchAll(/```(grpc|json|text)\n([\s\S]*?)```/g)].map((m) => ({
    lang: m[1]!,
    body: m[2]!.trim(),
  }));
  const out: Example[] = [];
  blocks.forEach((b, i) => {
    const next = blocks[i + 1];
    if (b.lang !== "grpc" || !next || next.lang === "grpc") return;
    const headers: Record<string, string> = {};
    for (const m of b.body.matchAll(/-H '([^:]+): ([^']*)'/g)) headers[m[1]!] = m[2]!;
    const data = JSON.parse(/-d '([^']*)'/.exec(b.body)?.[1] ?? "{}");
    const method = /ResourceLeaseService\/(\w+)\s*$/.exec(b.body)?.[1];
    if (!method) throw new Error(`no method in ${b.body}`);
    out.push({
      rpc: method[0]!.toLowerCase() + method.slice(1),
      data,
      headers,
      kind: next.lang as "json" | "text",
      expected: next.body,
    });
  });
  return out;
}

function matches(actual: unknown, expected: unknown): boolean {
  if (typeof expected === "string" && /^<[a-z]+>$/.test(expected)) return actual !== undefined;
  if (Array.isArray(expected))
    return (
      Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e))
    );
  if (expected && typeof expected === "object") {
    if (!actual || typeof actual !== "object") return false;
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    return [...new Set([...Object.keys(a), ...Object.keys(e)])].every((k) => matches(a[k], e[k]));
  }
  return actual === expected;
}

describe("docs/protocol.md, gRPC section", () => {
  let inbound: GrpcInbound;
  let component: ResourceLeaseDispatcherComponent;
  let client: ResourceLeaseServiceClient;
  beforeAll(async () => {
    const dispatcher = new Dispatcher({ service: "doc" });
    component = new ResourceLeaseDispatcherComponent(dispatcher);
    inbound = new GrpcInbound({ dispatcher });
    const { port } = await inbound.start();
    client = new ResourceLeaseServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await inbound.close();
    await component.close();
  });

  it("every grpcurl-form example gives the answer the doc shows", async () => {
    const list = examples();
    expect(list.length).toBeGreaterThanOrEqual(4);
    for (const example of list) {
      const rpc = resourceLeaseRpcs[example.rpc as keyof typeof resourceLeaseRpcs];
      expect(rpc, example.rpc).toBeDefined();
      // The doc states requests and answers as the procedure's JSON: map them through the procedure's messages.
      const definition = ResourceLeaseProcedures[rpc.verb] as ProcedureDefinition;
      const metadata = new Metadata();
      for (const [k, v] of Object.entries(example.headers)) metadata.set(k, v);
      const outcome = await new Promise<{ json?: unknown; error?: ServiceError }>((resolve) => {
        client.makeUnaryRequest(
          rpc.method.path,
          rpc.method.requestSerialize,
          rpc.method.responseDeserialize,
          rpc.toRequest(definition.request.write(definition.request.read(example.data, requestSite()), "proto")),
          metadata,
          { deadline: Date.now() + 5_000 },
          (error, response) =>
            resolve(
              error
                ? { error }
                : {
                    json: definition.response.write(
                      definition.response.read(rpc.fromResponse(response as Record<string, unknown>), responseSite()),
                      "json",
                    ),
                  },
            ),
        );
      });
      if (example.kind === "text") {
        expect(outcome.error, example.rpc).toBeDefined();
        const trailers = outcome.error!.metadata;
        const line = `ERROR: code=${grpcStatus[outcome.error!.code]} omnirelay-status=${trailers.get("omnirelay-status")[0]} omnirelay-error-code=${trailers.get("omnirelay-error-code")[0]}`;
        expect(line).toBe(example.expected);
      } else {
        expect(outcome.error, example.rpc).toBeUndefined();
        expect(
          matches(outcome.json, JSON.parse(example.expected)),
          `${example.rpc} => ${JSON.stringify(outcome.json)}`,
        ).toBe(true);
      }
    }
  });
});
