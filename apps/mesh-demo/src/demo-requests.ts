import type { IncomingMessage, ServerResponse } from "node:http";
import { type CatalogOperation, type CatalogOperationType, CatalogOperationTypes } from "./catalog.js";

// The request side of the diagnostics server's mutating endpoints: body reading, the CSRF checks, the bodies' checks.

/** Answers `value` as JSON. */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(body);
}

/**
 * Reads a JSON object body of at most `limit` bytes (an empty body reads as `{}`).
 * @throws Error when it is too large, not JSON or not an object.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error("request body too large");
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  const value = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("body must be an object");
  return value as Record<string, unknown>;
}

/** Why a request was refused: HTTP status, the error's status word, code and message. */
export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/**
 * Why a mutating `POST /demo/*` (`enqueue`, `redrive`) must be refused, if it must: a body not declared as JSON
 * (415), or a request from a browser page of another origin (403). A browser sends a cross-origin text/plain POST
 * without asking first, so without these checks any web page could enqueue into (or redrive) a demo it can reach.
 */
export function refusal(req: IncomingMessage, action: "enqueue" | "redrive"): Refusal | undefined {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let same = false;
    try {
      same = new URL(origin).origin === new URL(`http://${req.headers.host ?? ""}`).origin;
    } catch {
      same = false;
    }
    if (!same) {
      return { status: 403, code: "mesh.demo.origin_forbidden", message: `Origin '${origin}' may not ${action}.` };
    }
  } else if (req.headers["sec-fetch-site"] === "cross-site" || req.headers["sec-fetch-site"] === "same-site") {
    return { status: 403, code: "mesh.demo.origin_forbidden", message: `Cross-site requests may not ${action}.` };
  }
  const type = req.headers["content-type"]?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") {
    return {
      status: 415,
      code: "mesh.demo.unsupported_media_type",
      message: `POST /demo/${action} needs 'Content-Type: application/json'.`,
    };
  }
  return undefined;
}

/**
 * Builds the `POST /demo/enqueue` operation (as the original's MeshEnqueueRequest); `tenant` (1–64 of
 * `A-Z a-z 0-9 . _ -`, default `tenant-interactive`) picks the dispatch key `<tenant>/<catalog>`.
 * @throws Error naming the bad field.
 */
export function manualOperation(body: Record<string, unknown>): { operation: CatalogOperation; resourceId?: string } {
  const str = (key: string, fallback: string) => (typeof body[key] === "string" ? (body[key] as string) : fallback);
  const type = str("operation", "CommitSnapshot");
  if (!(CatalogOperationTypes as readonly string[]).includes(type)) {
    throw new Error(`operation must be one of ${CatalogOperationTypes.join(", ")}`);
  }
  const version = body.version === undefined ? 1 : Number(body.version);
  if (!Number.isSafeInteger(version) || version < 1) throw new Error("version must be an integer >= 1");
  const list = (key: string, fallback: string[]) =>
    Array.isArray(body[key]) ? (body[key] as unknown[]).map(String) : fallback;
  const requestId = str("requestId", crypto.randomUUID().replaceAll("-", ""));
  const tenant = str("tenant", "tenant-interactive");
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(tenant)) throw new Error("tenant must be 1-64 of A-Z a-z 0-9 . _ -");
  const operation: CatalogOperation = {
    catalog: str("catalog", "fabric-lakehouse"),
    database: str("database", "sales"),
    table: str("table", "ad_hoc"),
    operationType: type as CatalogOperationType,
    version,
    principal: str("principal", "cli.enqueue"),
    columns: list("columns", ["id STRING", "payload STRING"]),
    changes: list("changes", [`manual ${type}`]),
    timestamp: new Date().toISOString(),
    requestId,
    tenant,
  };
  return { operation };
}

/** A `POST /demo/redrive` body: which shard (name or namespace; every shard without one) and which items (all without). */
export interface RedriveRequest {
  readonly shard?: string;
  readonly sequenceIds?: number[];
}

/**
 * Checks a `POST /demo/redrive` body: `shard` a string when given; `sequenceIds` positive integers when given (a
 * `sequenceId` alone is one item), and only with a shard.
 * @throws Error naming the bad field.
 */
export function redriveRequest(body: Record<string, unknown>): RedriveRequest {
  if (body.shard !== undefined && (typeof body.shard !== "string" || body.shard === "")) {
    throw new Error("shard must be a shard name or namespace");
  }
  const raw = body.sequenceIds ?? (body.sequenceId === undefined ? undefined : [body.sequenceId]);
  if (raw !== undefined && (!Array.isArray(raw) || raw.some((id) => !Number.isSafeInteger(id) || (id as number) < 1))) {
    throw new Error("sequenceIds must be integers >= 1");
  }
  if (raw !== undefined && body.shard === undefined) throw new Error("sequenceIds need the shard they belong to");
  return {
    ...(typeof body.shard === "string" ? { shard: body.shard } : {}),
    ...(raw !== undefined ? { sequenceIds: raw as number[] } : {}),
  };
}
