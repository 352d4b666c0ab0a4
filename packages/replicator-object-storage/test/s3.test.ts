import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import S3rver from "s3rver";
import { S3ResourceLeaseObjectStore } from "../src/s3/index.js";
import { describeBackend } from "./backend-suite.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

interface KoaContext {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  get(name: string): string;
  status: number;
  type: string;
  body: unknown;
}

type Middleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;

/**
 * s3rver 3.7.1 predates S3 conditional writes (August 2024) and ignores `If-None-Match` on PUT. This middleware,
 * put in front of its routes, answers such a PUT of an existing key with 412 PreconditionFailed, as AWS S3 does.
 * Conditional PUTs of one key are handled one at a time, so of concurrent ones exactly one creates the object, as on
 * S3 (the existence check and the write are otherwise two steps another PUT can run between).
 */
function conditionalPutShim(server: S3rver): Middleware {
  const running = new Map<string, Promise<void>>();
  return async (ctx, next) => {
    if (ctx.method !== "PUT" || ctx.get("if-none-match") !== "*") return next();
    const [, bucket, ...rest] = ctx.path.split("/");
    const key = decodeURIComponent(rest.join("/"));
    const lock = `${bucket}/${key}`;
    const previous = running.get(lock) ?? Promise.resolve();
    const turn = previous.then(async () => {
      const store = (server as unknown as { store: { existsObject(b: string, k: string): Promise<boolean> } }).store;
      if (bucket && key && (await store.existsObject(bucket, key))) {
        ctx.status = 412;
        ctx.type = "application/xml";
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>`;
        return;
      }
      await next();
    });
    const settled = turn.catch(() => undefined);
    running.set(lock, settled);
    try {
      await turn;
    } finally {
      if (running.get(lock) === settled) running.delete(lock);
    }
  };
}

/**
 * s3rver 3.7.1 walks its folders to list a bucket, so `a/1` comes before `a-x`; S3 lists in UTF-8 byte order, where
 * `-` (0x2d) sorts before `/` (0x2f). This middleware, put between s3rver's XML encoder and its routes, sorts a
 * ListObjectsV2 page the way S3 does. (One page only: s3rver cannot page past one anyway, see below.)
 */
const sortListingShim: Middleware = async (ctx, next) => {
  await next();
  const result = (ctx.body as { ListBucketResult?: { Contents?: { Key: string }[] } } | undefined)?.ListBucketResult;
  if (ctx.method === "GET" && ctx.query["list-type"] === "2" && Array.isArray(result?.Contents)) {
    result.Contents.sort((a, b) => Buffer.compare(Buffer.from(a.Key), Buffer.from(b.Key)));
  }
};

const startS3 = async () => {
  const directory = await mkdtemp(join(tmpdir(), "omnirelay-s3rver-"));
  const server = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory });
  const middleware = (server as unknown as { middleware: Middleware[] }).middleware;
  middleware.unshift(conditionalPutShim(server));
  // Last but one: inside the XML encoder (so the page is still an object), just before the routes.
  middleware.splice(middleware.length - 1, 0, sortListingShim);
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
    newClient,
    // Default page size: s3rver 3.7.1 builds continuation tokens with DES, which OpenSSL 3 (Node 20) lacks, so a
    // truncated listing answers 500 InternalError there. Real S3 pages fine.
    newStore: () => new S3ResourceLeaseObjectStore({ client: newClient(), bucket: "audit" }),
    close: async () => {
      for (const client of clients) client.destroy();
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
};

describeBackend("S3 (s3rver)", startS3, {
  contentTypeOf: async (backend, key) =>
    (await backend.newClient().send(new HeadObjectCommand({ Bucket: "audit", Key: key }))).ContentType,
});
