import { createHash, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A small in-memory server speaking the part of the Google Cloud Storage JSON API that @google-cloud/storage 7 uses
 * for create bucket, multipart and resumable upload (with `ifGenerationMatch`), media download, metadata get and
 * prefix/startOffset listing. No GCS emulator can run here (see docs/guides/object-storage.md), so the GCS store is
 * tested against this; the SDK checks crc32c/md5 of every upload, so the fake returns both.
 */
export interface GcsFake {
  readonly endpoint: string;
  /** Number of list requests served (for tests of resume cost). */
  readonly stats: { lists: number };
  close(): Promise<void>;
}

interface StoredObject {
  readonly data: Buffer;
  readonly contentType: string;
  readonly generation: number;
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32c(data: Buffer): string {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC32C_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0);
  return out.toString("base64");
}

const md5 = (data: Buffer): string => createHash("md5").update(data).digest("base64");

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function fail(res: ServerResponse, status: number, message: string): void {
  send(res, status, { error: { code: status, message, errors: [{ message, reason: String(status) }] } });
}

/** Splits a multipart/related body into its parts' bodies. */
function multipartParts(body: Buffer, contentType: string): Buffer[] {
  const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
  if (!boundary) return [];
  const text = body.toString("latin1");
  return text
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const start = part.indexOf("\r\n\r\n");
      return Buffer.from(part.slice(start + 4, part.length - 2), "latin1");
    });
}

/** Starts the fake on 127.0.0.1, a free port. */
export async function startGcsFake(): Promise<GcsFake> {
  const buckets = new Map<string, Map<string, StoredObject>>();
  const sessions = new Map<string, { bucket: string; name: string; contentType: string; ifGenerationMatch?: string }>();
  const stats = { lists: 0 };
  let generation = 1;
  let endpoint = "";

  const resource = (bucket: string, name: string, o: StoredObject) => ({
    kind: "storage#object",
    id: `${bucket}/${name}/${o.generation}`,
    name,
    bucket,
    generation: String(o.generation),
    metageneration: "1",
    contentType: o.contentType,
    size: String(o.data.length),
    crc32c: crc32c(o.data),
    md5Hash: md5(o.data),
  });

  const store = (
    res: ServerResponse,
    target: { bucket: string; name: string; contentType: string; ifGenerationMatch?: string | undefined },
    data: Buffer,
  ) => {
    const objects = buckets.get(target.bucket);
    if (!objects) return fail(res, 404, "No such bucket");
    const existing = objects.get(target.name);
    if (target.ifGenerationMatch !== undefined && Number(target.ifGenerationMatch) !== (existing?.generation ?? 0)) {
      return fail(res, 412, "At least one of the pre-conditions you specified did not hold.");
    }
    const o = { data, contentType: target.contentType, generation: generation++ };
    objects.set(target.name, o);
    send(res, 200, resource(target.bucket, target.name, o));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const q = url.searchParams;
    const body = await readBody(req);
    if (req.method === "POST" && path === "/storage/v1/b") {
      const name = (JSON.parse(body.toString()) as { name: string }).name;
      if (buckets.has(name)) return fail(res, 409, "Bucket exists");
      buckets.set(name, new Map());
      return send(res, 200, { kind: "storage#bucket", id: name, name });
    }
    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(path);
    if (req.method === "POST" && upload) {
      const m = upload;
      const bucket = decodeURIComponent(m[1] as string);
      const ifGenerationMatch = q.get("ifGenerationMatch") ?? undefined;
      if (q.get("uploadType") === "multipart") {
        const [meta, media] = multipartParts(body, req.headers["content-type"] ?? "");
        const json = JSON.parse(meta?.toString() ?? "{}") as { name?: string; contentType?: string };
        const name = json.name ?? q.get("name") ?? "";
        return store(
          res,
          { bucket, name, contentType: json.contentType ?? "", ifGenerationMatch },
          media ?? Buffer.alloc(0),
        );
      }
      if (q.get("uploadType") === "resumable") {
        const json = body.length > 0 ? (JSON.parse(body.toString()) as { name?: string; contentType?: string }) : {};
        const id = randomUUID();
        sessions.set(id, {
          bucket,
          name: json.name ?? q.get("name") ?? "",
          contentType: json.contentType ?? "",
          ...(ifGenerationMatch !== undefined ? { ifGenerationMatch } : {}),
        });
        res.writeHead(200, {
          location: `${endpoint}/upload/storage/v1/b/${m[1]}/o?uploadType=resumable&upload_id=${id}`,
        });
        return res.end();
      }
    }
    if (req.method === "PUT" && path.startsWith("/upload/storage/v1/b/") && q.get("upload_id")) {
      const session = sessions.get(q.get("upload_id") as string);
      if (!session) return fail(res, 404, "No such upload");
      sessions.delete(q.get("upload_id") as string);
      return store(res, session, body);
    }
    const listing = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(path);
    if (req.method === "GET" && listing) {
      const m = listing;
      stats.lists++;
      const bucket = decodeURIComponent(m[1] as string);
      const objects = buckets.get(bucket);
      if (!objects) return fail(res, 404, "No such bucket");
      const prefix = q.get("prefix") ?? "";
      const startOffset = q.get("startOffset") ?? "";
      const pageToken = q.get("pageToken") ?? "";
      const max = Number(q.get("maxResults") ?? "1000");
      const names = [...objects.keys()]
        .filter((n) => n.startsWith(prefix) && n >= startOffset && (pageToken === "" || n > pageToken))
        .sort();
      const page = names.slice(0, max);
      const items = page.map((n) => resource(bucket, n, objects.get(n) as StoredObject));
      return send(res, 200, {
        kind: "storage#objects",
        items,
        ...(names.length > max ? { nextPageToken: page.at(-1) } : {}),
      });
    }
    const object = /^\/(?:download\/)?storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(path);
    if (req.method === "GET" && object) {
      const m = object;
      const bucket = decodeURIComponent(m[1] as string);
      const name = decodeURIComponent(m[2] as string);
      const o = buckets.get(bucket)?.get(name);
      if (!o) return fail(res, 404, `No such object: ${bucket}/${name}`);
      if (q.get("alt") === "media") {
        res.writeHead(200, {
          "content-type": o.contentType,
          "content-length": o.data.length,
          "x-goog-hash": `crc32c=${crc32c(o.data)},md5=${md5(o.data)}`,
          "x-goog-generation": String(o.generation),
        });
        return res.end(o.data);
      }
      return send(res, 200, resource(bucket, name, o));
    }
    fail(res, 501, `fake GCS: ${req.method} ${path} is not implemented`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => fail(res, 500, String(error)));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    stats,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
