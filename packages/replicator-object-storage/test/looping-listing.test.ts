import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { S3Client } from "@aws-sdk/client-s3";
import { ContainerClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { Storage } from "@google-cloud/storage";
import { ErrorCodes } from "@omnirelay/core";
import type { ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AzureBlobResourceLeaseObjectStore } from "../src/azure/index.js";
import { GcsResourceLeaseObjectStore } from "../src/gcs/index.js";
import { S3ResourceLeaseObjectStore } from "../src/s3/index.js";
import { collect } from "./events.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

// A service (or a proxy in front of it) that answers every list request with "more to come" and the same
// continuation token. No emulator does this, so a small server speaks just the list call of each API, through the
// real SDKs. It stops looping after CAP requests so that a store without the guard ends (and its test fails) too.
const CAP = 20;
const KEY = "log/events/00000000000000/00000000000000000001.jsonl";

type Answer = (req: IncomingMessage, res: ServerResponse, last: boolean) => void;

const s3Page: Answer = (_req, res, last) => {
  res.writeHead(200, { "content-type": "application/xml" });
  const more = last ? "<IsTruncated>false</IsTruncated>" : "<IsTruncated>true</IsTruncated>";
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>audit</Name><Prefix>log/</Prefix><MaxKeys>1000</MaxKeys>${more}<NextContinuationToken>SAME</NextContinuationToken><Contents><Key>${KEY}</Key><Size>10</Size></Contents></ListBucketResult>`,
  );
};

const gcsPage: Answer = (_req, res, last) => {
  const body = JSON.stringify({
    kind: "storage#objects",
    items: [],
    ...(last ? {} : { nextPageToken: "SAME" }),
  });
  res.writeHead(200, { "content-type": "application/json" });
  res.end(body);
};

const azurePage: Answer = (_req, res, last) => {
  res.writeHead(200, { "content-type": "application/xml", "x-ms-version": "2025-01-05" });
  res.end(
    `<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="http://127.0.0.1/devstoreaccount1" ContainerName="audit"><Prefix>log/</Prefix><MaxResults>5000</MaxResults><Blobs></Blobs><NextMarker>${last ? "" : "SAME"}</NextMarker></EnumerationResults>`,
  );
};

/** Starts a server on a free port that answers with `answer`, counting requests. */
async function startLoop(answer: Answer): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    answer(req, res, requests >= CAP);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const backends: { name: string; answer: Answer; store: (url: string) => ResourceLeaseObjectStore }[] = [
  {
    name: "S3",
    answer: s3Page,
    store: (url) =>
      new S3ResourceLeaseObjectStore({
        client: new S3Client({
          endpoint: url,
          region: "us-east-1",
          forcePathStyle: true,
          credentials: { accessKeyId: "test", secretAccessKey: "test" },
          maxAttempts: 1,
        }),
        bucket: "audit",
      }),
  },
  {
    name: "GCS",
    answer: gcsPage,
    store: (url) =>
      new GcsResourceLeaseObjectStore({
        bucket: new Storage({ apiEndpoint: url, projectId: "test", useAuthWithCustomEndpoint: false }).bucket("audit"),
      }),
  },
  {
    name: "Azure Blob",
    answer: azurePage,
    store: (url) =>
      new AzureBlobResourceLeaseObjectStore({
        container: new ContainerClient(
          `${url}/devstoreaccount1/audit`,
          new StorageSharedKeyCredential("devstoreaccount1", Buffer.from("not-a-secret").toString("base64")),
        ),
      }),
  },
];

describe.each(backends)("a $name listing whose continuation token loops", ({ answer, store }) => {
  let server: Awaited<ReturnType<typeof startLoop>>;
  beforeAll(async () => {
    server = await startLoop(answer);
  });
  afterAll(() => server.close());

  it("is refused as a store failure at the repeated token, after two requests, not followed forever", async () => {
    await expect(collect(store(server.url).list("log/"))).rejects.toMatchObject({
      code: ErrorCodes.objectStorage.storeFailed,
      metadata: { operation: "list" },
    });
    expect(server.requests()).toBe(2);
  });
});
