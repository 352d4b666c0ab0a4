import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { S3ResourceLeaseObjectStore } from "../src/s3/index.js";
import { describeObjectStoreContract } from "./contract.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

interface KoaContext {
  method: string;
  path: string;
  get(name: string): string;
  status: number;
  type: string;
  body: string;
}

/**
 * s3rver 3.7.1 predates S3 conditional writes (August 2024) and ignores `If-None-Match` on PUT. This middleware,
 * put in front of its routes, answers such a PUT of an existing key with 412 PreconditionFailed, as AWS S3 does.
 */
function conditionalPutShim(server: S3rver) {
  return async (ctx: KoaContext, next: () => Promise<void>) => {
    if (ctx.method === "PUT" && ctx.get("if-none-match") === "*") {
      const [, bucket, ...rest] = ctx.path.split("/");
      const key = decodeURIComponent(rest.join("/"));
      const store = (server as unknown as { store: { existsObject(b: string, k: string): Promise<boolean> } }).store;
      if (bucket && key && (await store.existsObject(bucket, key))) {
        ctx.status = 412;
        ctx.type = "application/xml";
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>`;
        return;
      }
    }
    await next();
  };
}

describeObjectStoreContract("S3 (s3rver)", async () => {
  const directory = await mkdtemp(join(tmpdir(), "omnirelay-s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory });
  (server as unknown as { middleware: unknown[] }).middleware.unshift(conditionalPutShim(server));
  const address = (await server.run()) as AddressInfo;
  const clients: S3Client[] = [];
  const newClient = () => {
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${address.port}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    clients.push(client);
    return client;
  };
  await newClient().send(new CreateBucketCommand({ Bucket: "audit" }));
  return {
    // Default page size: s3rver 3.7.1 builds continuation tokens with DES, which OpenSSL 3 (Node 20) lacks, so a
    // truncated listing answers 500 InternalError there. Real S3 pages fine.
    newStore: () => new S3ResourceLeaseObjectStore({ client: newClient(), bucket: "audit" }),
    close: async () => {
      for (const client of clients) client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});
