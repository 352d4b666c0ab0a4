import { type Logger, silentLogger } from "../contracts/health.js";
import type { LifecycleState } from "../contracts/lifecycle.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import { DeadlineMiddleware } from "../middleware/deadline.js";
import { type Clock, systemClock, type TimerHandle } from "../util/clock.js";
import { JsonObject } from "../wire/json-object.js";
import { requestSite } from "../wire/site.js";
import {
  type LifecycleComponent,
  LifecycleGroup,
  type LifecycleInbound,
  type LifecycleStopOptions,
} from "./lifecycle.js";
import type {
  ProcedureDefinition,
  ProcedureSpec,
  RequestMeta,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryRequest,
  UnaryResponse,
} from "./types.js";

/** How the dispatcher enforces call deadlines (see {@link DispatcherOptions.deadlines}). */
export interface DispatcherDeadlineOptions {
  /** Timeout of a call that arrives without a deadline. @defaultValue `maxTimeoutMs` (no deadline when both are unset) */
  readonly defaultTimeoutMs?: number;
  /** Longest time any call may run, whatever deadline the caller asked for. @defaultValue `undefined` (no cap) */
  readonly maxTimeoutMs?: number;
}

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** Service name reported on responses and spans. */
  readonly service: string;
  /**
   * Inbound middleware, outermost first. Deadlines are not middleware here: the dispatcher enforces them itself,
   * before this chain (see `deadlines`), so a `DeadlineMiddleware` in it is refused.
   */
  readonly inboundMiddleware?: readonly UnaryInboundMiddleware[];
  /**
   * Deadline rules. Every call's deadline (`meta.deadline`, read by the inbound from `Rpc-Ttl-Ms`, `Rpc-Deadline` or
   * the gRPC deadline) is enforced once, here, on `clock`: a call whose deadline has passed is refused before any
   * middleware or procedure runs, and one still running when it passes fails with its signal aborted.
   * @defaultValue `{}` (the caller's deadline only, at most 24 days away)
   */
  readonly deadlines?: DispatcherDeadlineOptions;
  /**
   * Time source of call deadlines, for the dispatcher and its inbounds (they read relative deadlines against it).
   * @defaultValue `systemClock`
   */
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A JSON procedure: gets the request body as a JSON object, returns a JSON-serialisable result. */
export type JsonUnaryHandler = (body: Record<string, unknown>, meta: RequestMeta) => Promise<unknown>;

/** How a typed procedure is registered: its definition, its handler, and the limits its requests are read with. */
export interface ProcedureRegistration<Req, Res> {
  /** Full name, e.g. `resourcelease.billing::enqueue`. */
  readonly name: string;
  readonly definition: ProcedureDefinition<Req, Res>;
  readonly handler: (request: Req, meta: RequestMeta) => Promise<Res>;
  /** Largest body a request may carry (the queue's `maxBodyBytes`). @defaultValue 1 MiB */
  readonly maxBodyBytes?: number;
  readonly middleware?: readonly UnaryInboundMiddleware[];
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * Hosts procedures and runs each call through the inbound middleware chain. Transports decode the wire format into a
 * request message with the procedure's definition ({@link Dispatcher.resolve}), then call {@link Dispatcher.dispatch}.
 *
 * It also owns the lifecycle of what serves it: an inbound built on it (`HttpInbound`, `GrpcInbound`) and a
 * `ResourceLeaseDispatcherComponent` attach themselves, and {@link Dispatcher.addComponent} adds more (a durable
 * queue, a store, a control plane). {@link Dispatcher.start} starts them; {@link Dispatcher.stop} drains the
 * inbounds, waits for the calls in flight, then closes the components in reverse order.
 */
export class Dispatcher implements AsyncDisposable {
  readonly service: string;
  /** Time source of call deadlines; inbounds read relative deadlines (`Rpc-Ttl-Ms`) against it. */
  readonly clock: Clock;
  private readonly registry = new Map<string, ProcedureSpec>();
  private readonly middleware: UnaryInboundMiddleware[];
  private readonly logger: Logger;
  private readonly deadlines: DeadlineMiddleware;
  private readonly lifecycle: LifecycleGroup;
  private accepting = true;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for a blank service
   * name, bad `deadlines`, or a `DeadlineMiddleware` in `inboundMiddleware`.
   */
  constructor(options: DispatcherOptions) {
    if (typeof options.service !== "string" || options.service.trim().length === 0) {
      throw OmniRelayError.invalidOption("service", "service is required.");
    }
    this.service = options.service.trim();
    this.middleware = [...refuseDeadlineMiddleware(options.inboundMiddleware ?? [], "inboundMiddleware")];
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.deadlines = new DeadlineMiddleware({ ...options.deadlines, clock: this.clock });
    // The grace is real time, like the inbounds' own grace timers: it bounds how long a process takes to exit.
    this.lifecycle = new LifecycleGroup({ logger: this.logger, drain: (remainingMs) => this.drainCalls(remainingMs) });
  }

  /** Where the dispatcher stands: `idle` until {@link start}, `draining` while {@link stop} runs, then `stopped`. */
  get state(): LifecycleState {
    return this.lifecycle.state;
  }

  /**
   * Appends inbound middleware (innermost so far).
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a `DeadlineMiddleware` (use the
   * `deadlines` option).
   */
  use(middleware: UnaryInboundMiddleware): this {
    refuseDeadlineMiddleware([middleware], "middleware");
    this.middleware.push(middleware);
    return this;
  }

  /**
   * Attaches an inbound: {@link start} starts it, {@link stop} drains it. Inbounds built on this dispatcher attach
   * themselves; attaching one twice is harmless.
   * @throws OmniRelayError failed-precondition `omnirelay.lifecycle.state` once the dispatcher has started or stopped.
   */
  addInbound(inbound: LifecycleInbound): this {
    this.lifecycle.addInbound(inbound);
    return this;
  }

  /**
   * Adds a component that {@link stop} closes once the inbounds have drained and the calls in flight are done, the
   * last added first (so add a log before the queue that writes to it). One with a `start()` is started by
   * {@link start} before any inbound. A `ResourceLeaseDispatcherComponent` adds itself.
   * @throws OmniRelayError failed-precondition `omnirelay.lifecycle.state` once the dispatcher is draining or stopped,
   * or for a component with a `start()` once it has started.
   */
  addComponent(component: LifecycleComponent): this {
    this.lifecycle.addComponent(component);
    return this;
  }

  /**
   * Starts the components that have a `start()`, in the order added, then the inbounds. Idempotent. If anything fails
   * to start, everything is stopped (components closed) and the error rethrown.
   * @throws OmniRelayError failed-precondition `omnirelay.lifecycle.state` after {@link stop}; whatever failed to start
   * (e.g. unavailable `omnirelay.inbound.bind_failed`).
   */
  start(): Promise<void> {
    return this.lifecycle.start();
  }

  /**
   * Stops taking calls and closes everything, in order: the inbounds drain at once (new calls get `unavailable`
   * `omnirelay.inbound.shutting_down`, calls in flight finish within `graceMs` — without one, within each inbound's
   * own grace — then are cut); calls made without an inbound get what is left of the grace (10 s without one), then
   * those with a deadline are cancelled; then the components close, the last added first. Before {@link start} it
   * just closes what it was given. Idempotent.
   * @throws the first error a part failed to close with (the others still close; each is logged).
   */
  stop(options: LifecycleStopOptions = {}): Promise<void> {
    return this.lifecycle.stop(options);
  }

  /** `stop()` with the default grace, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Registers a typed procedure. Names are case-insensitive.
   * @throws OmniRelayError already-exists `omnirelay.procedure.duplicate` when the name is taken; invalid-argument
   * `resourcelease.options.invalid` for a `DeadlineMiddleware` in its `middleware`.
   */
  register<Req, Res>(registration: ProcedureRegistration<Req, Res>): void {
    const { name, definition, handler, maxBodyBytes } = registration;
    if (registration.middleware) refuseDeadlineMiddleware(registration.middleware, "middleware");
    const key = name.trim().toLowerCase();
    if (key.length === 0) {
      throw OmniRelayError.invalidOption("name", "A procedure needs a name.");
    }
    if (this.registry.has(key)) {
      throw new OmniRelayError({
        status: "already-exists",
        code: ErrorCodes.rpc.procedureDuplicate,
        message: `Procedure '${name}' is already registered on service '${this.service}'.`,
        metadata: { procedure: name },
      });
    }
    const spec: ProcedureSpec<Req, Res> = {
      name,
      definition,
      readRequest: (value) => definition.request.read(value, requestSite("", maxBodyBytes)),
      handler,
      ...(registration.middleware ? { middleware: registration.middleware } : {}),
      ...(registration.labels ? { labels: registration.labels } : {}),
    };
    this.registry.set(key, spec as ProcedureSpec);
  }

  /** Registers a JSON procedure: the request is a JSON object, the result anything JSON can carry. */
  registerJson(
    name: string,
    handler: JsonUnaryHandler,
    options: { middleware?: readonly UnaryInboundMiddleware[]; labels?: Readonly<Record<string, string>> } = {},
  ): void {
    this.register({ name, definition: jsonProcedure(verbOf(name)), handler, ...options });
  }

  /** Looks up a procedure case-insensitively. */
  lookup(name: string): ProcedureSpec | undefined {
    return this.registry.get(name.trim().toLowerCase());
  }

  /** Every registered procedure. */
  procedures(): ProcedureSpec[] {
    return [...this.registry.values()];
  }

  /**
   * The procedure a call names, to decode its request with.
   * @throws OmniRelayError invalid-argument `omnirelay.request.procedure_required` without a name, unimplemented
   * `omnirelay.procedure.not_found` for an unknown one.
   */
  resolve(name: string): ProcedureSpec {
    if (!name) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.rpc.requestProcedureRequired,
        message: "No procedure was named.",
        metadata: {
          header: "rpc-procedure",
        },
      });
    }
    const spec = this.lookup(name);
    if (!spec) {
      throw new OmniRelayError({
        status: "unimplemented",
        code: ErrorCodes.rpc.procedureNotFound,
        message: `Procedure '${name}' is not registered for service '${this.service}'.`,
        metadata: { procedure: name },
      });
    }
    return spec;
  }

  /**
   * Runs a call whose request a transport has decoded (with {@link Dispatcher.resolve}'s `readRequest`): first its
   * deadline (refused at once when already past; see {@link DispatcherOptions.deadlines}), then dispatcher middleware,
   * then the procedure's own middleware, then its handler. Anything thrown that is not an `OmniRelayError` becomes
   * `internal` (`omnirelay.internal`) and is logged; its message is not sent.
   * @throws OmniRelayError unimplemented `omnirelay.procedure.not_found` for an unknown procedure; deadline-exceeded
   * `omnirelay.deadline_exceeded`; unavailable `omnirelay.inbound.shutting_down` once {@link stop} has drained the
   * inbounds.
   */
  async dispatch(request: UnaryRequest): Promise<UnaryResponse> {
    if (!this.accepting) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.rpc.inboundShuttingDown,
        message: "The dispatcher is shutting down.",
      });
    }
    const name = request.meta.procedure;
    const spec = this.resolve(name);
    const chain = [...this.middleware, ...(spec.middleware ?? [])];
    const run = (index: number, req: UnaryRequest): Promise<UnaryResponse> => {
      const mw = chain[index];
      if (!mw) return spec.handler(req.message, req.meta).then((message) => ({ message }));
      return mw.handle(req, (next) => run(index + 1, next));
    };
    this.inFlight++;
    try {
      return await this.deadlines.handle(request, (req) => run(0, req));
    } catch (error) {
      if (isOmniRelayError(error)) throw error;
      if (request.meta.signal.aborted) {
        const reason = request.meta.signal.reason;
        if (isOmniRelayError(reason)) throw reason;
        throw new OmniRelayError({
          status: "cancelled",
          code: ErrorCodes.rpc.cancelled,
          message: "The call was cancelled.",
        });
      }
      this.logger.error({ err: error, procedure: name }, "Procedure failed with an unexpected error.");
      throw new OmniRelayError({
        status: "internal",
        code: ErrorCodes.rpc.internal,
        message: "The procedure failed unexpectedly.",
        cause: error,
      });
    } finally {
      this.inFlight--;
      if (this.inFlight === 0 && this.idleWaiters.length > 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /**
   * Runs a call's middleware (the dispatcher's, then the procedure's) without its handler, and resolves with the
   * metadata as the chain passed it on (with the principal that principal binding found). A transport opening a
   * long-lived stream calls it once per procedure the stream will act as, so the stream meets the same
   * authentication, authorization and rate limits as those unary calls.
   * @throws OmniRelayError whatever the middleware refuses with; unimplemented `omnirelay.procedure.not_found`;
   * unavailable `omnirelay.inbound.shutting_down` once {@link stop} has drained the inbounds.
   */
  async admit(meta: RequestMeta): Promise<RequestMeta> {
    if (!this.accepting) {
      throw new OmniRelayError({
        status: "unavailable",
        code: ErrorCodes.rpc.inboundShuttingDown,
        message: "The dispatcher is shutting down.",
      });
    }
    const spec = this.resolve(meta.procedure);
    const chain = [...this.middleware, ...(spec.middleware ?? [])];
    let admitted: RequestMeta | undefined;
    const run = (index: number, req: UnaryRequest): Promise<UnaryResponse> => {
      const mw = chain[index];
      if (!mw) {
        admitted = req.meta;
        return Promise.resolve({ message: undefined });
      }
      return mw.handle(req, (next) => run(index + 1, next));
    };
    await run(0, { meta, message: {} });
    return admitted ?? meta;
  }

  /**
   * The step of {@link stop} between the inbounds and the components: the inbounds are closed, so every call still
   * to come would be made without one. Refuse them, give the calls in flight what is left of the grace, then cancel
   * those that have a deadline (a call without one is cut by its inbound, or ends when its component closes).
   */
  private async drainCalls(remainingMs: number): Promise<void> {
    this.accepting = false;
    if (this.inFlight > 0) {
      let timer: TimerHandle | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => {
          timer = systemClock.setTimeout(resolve, remainingMs);
        }),
      ]);
      if (timer !== undefined) systemClock.clearTimeout(timer);
    }
    this.deadlines.close();
  }
}

/**
 * Returns `middleware` when it holds no `DeadlineMiddleware`: the dispatcher enforces deadlines itself, and a second
 * one in a chain would run a second timer per call.
 */
function refuseDeadlineMiddleware(
  middleware: readonly UnaryInboundMiddleware[],
  option: string,
): readonly UnaryInboundMiddleware[] {
  if (middleware.some((mw) => mw instanceof DeadlineMiddleware)) {
    throw OmniRelayError.invalidOption(
      option,
      "The dispatcher enforces deadlines itself: configure them with its `deadlines` option instead of a DeadlineMiddleware.",
    );
  }
  return middleware;
}

/** A handler that runs `handler` after `middleware`, outermost first (for tests and outbound chains). */
export function composeInbound(middleware: readonly UnaryInboundMiddleware[], handler: UnaryHandler): UnaryHandler {
  return middleware.reduceRight<UnaryHandler>((next, mw) => (req) => mw.handle(req, next), handler);
}

/** The verb of a procedure name: what follows `::`, or the whole name. */
function verbOf(name: string): string {
  const at = name.lastIndexOf("::");
  return at < 0 ? name : name.slice(at + 2);
}

/** A procedure whose request and answer are plain JSON (custom procedures registered with `registerJson`). */
export function jsonProcedure(verb: string): ProcedureDefinition<Record<string, unknown>, unknown> {
  return { verb, request: JsonObject, response: JsonObject as never };
}
