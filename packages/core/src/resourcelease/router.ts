import type {
  ProcedureDefinition,
  RequestMeta,
  UnaryOutbound,
  UnaryRequest,
  UnaryResponse,
} from "../dispatcher/types.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { Clock, TimerHandle } from "../util/clock.js";
import { integerOption } from "../wire/options.js";
import {
  type AttemptVerdict,
  judgeAttempt,
  type ResourceLeaseEndpoint,
  type ResourceLeaseEndpointChange,
  type ResourceLeaseFailoverOptions,
} from "./endpoints.js";

/** Options of an {@link EndpointRouter}. Internal. */
export interface EndpointRouterOptions {
  readonly endpoints: readonly (string | ResourceLeaseEndpoint)[];
  readonly connect: (url: string) => UnaryOutbound;
  /** Whether an owner named by a `not_owner` answer but not listed may be dialled. @defaultValue none may */
  readonly followOwner?: (url: string) => boolean;
  readonly clock: Clock;
  readonly failover?: ResourceLeaseFailoverOptions;
  readonly onChange?: (change: ResourceLeaseEndpointChange) => void;
}

interface Route {
  readonly url: string;
  readonly outbound: UnaryOutbound;
}

/** Most endpoints a router dials: owners named by `not_owner` answers join the list, up to this many in all. */
const MAX_ROUTES = 64;

/** URLs compare without surrounding blanks and trailing slashes (`http://b:80/` names `http://b:80`). */
function normalize(url: string): string {
  return url.trim().replace(/\/+$/, "");
}

/**
 * Sends a client's calls to the node that owns its shard among several dispatcher endpoints: follows
 * `resourcelease.not_owner` to the owner it names when that is a listed endpoint (or `followOwner` accepts the URL:
 * it is then dialled with `connect`; otherwise the answer is the caller's), moves on to the
 * next endpoint when a node names nobody, cannot be reached or does not serve the namespace, and pauses between
 * rounds over every endpoint until the call's deadline. Later calls start where the last one found the owner.
 * Internal to `ResourceLeaseClient`.
 */
export class EndpointRouter {
  private readonly routes: Route[] = [];
  private current: Route;
  private readonly connect: (url: string) => UnaryOutbound;
  private readonly followOwner: ((url: string) => boolean) | undefined;
  private readonly clock: Clock;
  private readonly onChange: ((change: ResourceLeaseEndpointChange) => void) | undefined;
  private readonly initialDelayMs: number;
  private readonly maxDelayMs: number;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (option `endpoints`, `failover.*`). */
  constructor(options: EndpointRouterOptions) {
    this.connect = options.connect;
    this.followOwner = options.followOwner;
    this.clock = options.clock;
    this.onChange = options.onChange;
    this.initialDelayMs = integerOption("failover.initialDelayMs", options.failover?.initialDelayMs, {
      min: 1,
      fallback: 50,
    });
    this.maxDelayMs = integerOption("failover.maxDelayMs", options.failover?.maxDelayMs, {
      min: this.initialDelayMs,
      fallback: Math.max(1_000, this.initialDelayMs),
    });
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0) {
      throw OmniRelayError.invalidOption("endpoints", "endpoints must list at least one dispatcher.");
    }
    if (options.endpoints.length > MAX_ROUTES) {
      throw OmniRelayError.invalidOption("endpoints", `endpoints may list at most ${MAX_ROUTES} dispatchers.`);
    }
    for (const entry of options.endpoints) {
      const url = typeof entry === "string" ? entry : entry?.url;
      if (typeof url !== "string" || normalize(url) === "") {
        throw OmniRelayError.invalidOption("endpoints", "Every endpoint needs a non-blank url.");
      }
      if (this.find(url)) throw OmniRelayError.invalidOption("endpoints", `Endpoint '${url}' is listed twice.`);
      const outbound = typeof entry === "string" ? undefined : entry.outbound;
      this.routes.push({ url: normalize(url), outbound: outbound ?? this.connect(url) });
    }
    this.current = this.routes[0] as Route;
  }

  /** The URL calls go to now. */
  get url(): string {
    return this.current.url;
  }

  /** Every endpoint known, the listed ones first, then owners followed (`followOwner` accepted them). */
  get urls(): string[] {
    return this.routes.map((r) => r.url);
  }

  /**
   * Sends `request`, moving between endpoints as answers direct. A call is sent again only when the refusal proves
   * it changed nothing, or when `replayable` (the verb is idempotent); otherwise the error is thrown, and later calls
   * go to the next endpoint. The error of the last attempt is thrown once the deadline leaves no room, the signal
   * aborts, or every endpoint answered that it does not serve the namespace. A `not_owner` naming an owner that is
   * neither listed nor accepted by `followOwner` is thrown at once: the call, its headers and body never go there.
   */
  async call<Req, Res>(
    definition: ProcedureDefinition<Req, Res>,
    request: UnaryRequest<Req>,
    replayable: boolean,
  ): Promise<UnaryResponse<Res>> {
    let route = this.current;
    let moved = false;
    const tried = new Set<Route>();
    let onlyNotServed = true;
    let delayMs = this.initialDelayMs;
    for (;;) {
      try {
        const response = await route.outbound.call(definition, request);
        if (moved) this.current = route;
        return response;
      } catch (thrown) {
        const error = OmniRelayError.from(thrown);
        const verdict = judgeAttempt(error);
        if (verdict.kind === "answer") throw error;
        if (verdict.reason !== "not_served") onlyNotServed = false;
        const next = this.next(route, verdict);
        if (next === undefined) throw error; // an owner this client was not given: not followed
        tried.add(route);
        if (this.current === route && next !== route) {
          this.current = next;
          this.onChange?.({ from: route.url, to: next.url, reason: verdict.reason, error });
        }
        if (!(verdict.safe || replayable) || request.meta.signal.aborted) throw error;
        if (tried.has(next)) {
          // Every endpoint of this round was tried: nobody serves the shard right now (a failover in progress).
          if (onlyNotServed) throw error;
          if (!(await this.pause(delayMs, request.meta))) throw error;
          delayMs = Math.min(delayMs * 2, this.maxDelayMs);
          tried.clear();
          onlyNotServed = true;
        }
        route = next;
        moved = true;
      }
    }
  }

  /** Closes every endpoint's outbound. */
  async close(): Promise<void> {
    await Promise.all(this.routes.map((r) => r.outbound.close?.()));
  }

  /**
   * Where to go after `route` failed: the owner it named (dialled when new and `followOwner` accepts it), else the
   * endpoint after it; undefined when the owner named is one this client may not follow.
   */
  private next(route: Route, verdict: Extract<AttemptVerdict, { kind: "move" }>): Route | undefined {
    if (verdict.url !== undefined && normalize(verdict.url) !== route.url) {
      const known = this.find(verdict.url);
      if (known) return known;
      if (!this.mayFollow(verdict.url)) return undefined;
      const dialled = this.dial(verdict.url);
      if (dialled) return dialled;
    }
    return this.routes[(this.routes.indexOf(route) + 1) % this.routes.length] as Route;
  }

  /** Whether `followOwner` accepts an owner's URL that is not listed (a throwing `followOwner` refuses it). */
  private mayFollow(url: string): boolean {
    try {
      return this.followOwner?.(url) === true;
    } catch {
      return false;
    }
  }

  private find(url: string): Route | undefined {
    const wanted = normalize(url);
    return this.routes.find((r) => r.url === wanted);
  }

  /** A route to an owner named in an answer; none when the list is full or `connect` cannot dial the URL. */
  private dial(url: string): Route | undefined {
    if (this.routes.length >= MAX_ROUTES) return undefined;
    let outbound: UnaryOutbound;
    try {
      outbound = this.connect(url);
    } catch {
      return undefined;
    }
    const route = { url: normalize(url), outbound };
    this.routes.push(route);
    return route;
  }

  /** Waits about `delayMs` (half of it plus jitter); false when the deadline would pass first or the call aborts. */
  private pause(delayMs: number, meta: RequestMeta): Promise<boolean> {
    const waitMs = Math.round(delayMs / 2 + (Math.random() * delayMs) / 2);
    if (meta.deadline !== undefined && this.clock.now() + waitMs >= meta.deadline) return Promise.resolve(false);
    const { signal } = meta;
    return new Promise<boolean>((resolve) => {
      let timer: TimerHandle | undefined;
      const onAbort = () => {
        if (timer !== undefined) this.clock.clearTimeout(timer);
        resolve(false);
      };
      timer = this.clock.setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      }, waitMs);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}
