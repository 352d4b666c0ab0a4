import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

/**
 * How strictly a value is read. `request`: a caller's input at the edge (HTTP, gRPC, an in-process call) — every limit
 * of `ResourceLeaseLimits` applies and a body that is a view into a larger buffer is copied. `response`: what a server
 * answered, or a drain file — the structure is checked with the same codes, limits are not. `log`: a stored
 * replication event or snapshot — the structure is checked, limits are not (a log written before a limit tightened
 * must still open), and every problem is `resourcelease.replication.event_invalid`.
 */
export type WireMode = "request" | "response" | "log";

/**
 * Where a value is being read: its path for error metadata, and the mode. Internal to the wire layer. The path is
 * built only when asked for (an error): reading a batch of a thousand items builds none.
 */
export interface Site {
  readonly mode: WireMode;
  readonly path: string;
  /** Largest body in bytes (request mode). */
  readonly maxBodyBytes: number;
  /**
   * The option's name when the value is a constructor or call option rather than a message field: a bad value is then
   * `OmniRelayError.invalidOption` (`resourcelease.options.invalid`, metadata `option`), and text is never read as a
   * number.
   */
  readonly option?: string;
}

/** The root of a read: its mode and body limit, and the path it starts at. */
class RootSite implements Site {
  readonly mode: WireMode;
  readonly maxBodyBytes: number;
  readonly path: string;

  constructor(mode: WireMode, maxBodyBytes: number, path: string) {
    this.mode = mode;
    this.maxBodyBytes = maxBodyBytes;
    this.path = path;
  }
}

/**
 * A field or list entry under another site: only its parent and key, since every field of every message read gets one
 * (a grant has two dozen); the mode and body limit are the parent's, the path is built only when asked for. Not an
 * option site, even under one: a field of an option is a message field.
 */
class ChildSite implements Site {
  private readonly parent: Site;
  private readonly key: string | number;
  private built: string | undefined;

  constructor(parent: Site, key: string | number) {
    this.parent = parent;
    this.key = key;
  }

  get mode(): WireMode {
    return this.parent.mode;
  }

  get maxBodyBytes(): number {
    return this.parent.maxBodyBytes;
  }

  get path(): string {
    if (this.built === undefined) {
      const base = this.parent.path;
      const key = this.key;
      this.built = typeof key === "number" ? `${base}[${key}]` : base ? `${base}.${key}` : key;
    }
    return this.built;
  }
}

/** A site one level down: `payload` + `resourceId` → `payload.resourceId`, `items` + 2 → `items[2]`. */
export function child(site: Site, key: string | number): Site {
  return new ChildSite(site, key);
}

/**
 * Throws the invalid-argument error of a bad value: `code` in request mode, `resourcelease.replication.event_invalid`
 * in log mode; metadata `field` is the site's path, and `limit` when the problem is a broken limit.
 */
export function fail(site: Site, code: string, problem: string | { message: string; limit: number }): never {
  if (site.option !== undefined) {
    throw OmniRelayError.invalidOption(site.option, typeof problem === "string" ? problem : problem.message);
  }
  const metadata: Record<string, string> = { field: site.path };
  if (typeof problem !== "string") metadata.limit = String(problem.limit);
  throw new OmniRelayError({
    status: "invalid-argument",
    code: site.mode === "log" ? ErrorCodes.replication.eventInvalid : code,
    message: typeof problem === "string" ? problem : problem.message,
    metadata,
  });
}

/** The root site of a request (the caller's input), with the queue's body limit. */
export function requestSite(path = "", maxBodyBytes = DEFAULT_MAX_BODY_BYTES): Site {
  return new RootSite("request", maxBodyBytes, path);
}

/** The site of an option: errors name it as `Option 'name'` and are invalid-option errors. */
export function optionSite(name: string): Site {
  return { mode: "request", maxBodyBytes: Number.POSITIVE_INFINITY, path: `Option '${name}'`, option: name };
}

/** The root site of a server's answer or a file of items: codes kept, limits not applied. */
export function responseSite(path = ""): Site {
  return new RootSite("response", Number.POSITIVE_INFINITY, path);
}

/** The root site of a stored event or snapshot. */
export function logSite(path = ""): Site {
  return new RootSite("log", Number.POSITIVE_INFINITY, path);
}

/** Default of the queue option `maxBodyBytes`: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
