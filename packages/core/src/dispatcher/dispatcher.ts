import { type Logger, silentLogger } from "../contracts/health.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import { JsonObject } from "../wire/json-object.js";
import { requestSite } from "../wire/site.js";
import type {
  ProcedureDefinition,
  ProcedureSpec,
  RequestMeta,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryRequest,
  UnaryResponse,
} from "./types.js";

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** Service name reported on responses and spans. */
  readonly service: string;
  /** Inbound middleware, outermost first. */
  readonly inboundMiddleware?: readonly UnaryInboundMiddleware[];
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
 */
export class Dispatcher {
  readonly service: string;
  private readonly registry = new Map<string, ProcedureSpec>();
  private readonly middleware: UnaryInboundMiddleware[];
  private readonly logger: Logger;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a blank service name. */
  constructor(options: DispatcherOptions) {
    if (typeof options.service !== "string" || options.service.trim().length === 0) {
      throw OmniRelayError.invalidOption("service", "service is required.");
    }
    this.service = options.service.trim();
    this.middleware = [...(options.inboundMiddleware ?? [])];
    this.logger = options.logger ?? silentLogger;
  }

  /** Appends inbound middleware (innermost so far). */
  use(middleware: UnaryInboundMiddleware): this {
    this.middleware.push(middleware);
    return this;
  }

  /**
   * Registers a typed procedure. Names are case-insensitive.
   * @throws OmniRelayError already-exists `omnirelay.procedure.duplicate` when the name is taken.
   */
  register<Req, Res>(registration: ProcedureRegistration<Req, Res>): void {
    const { name, definition, handler, maxBodyBytes } = registration;
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
   * Runs a call whose request a transport has decoded (with {@link Dispatcher.resolve}'s `readRequest`): dispatcher
   * middleware, then the procedure's own middleware, then its handler. Anything thrown that is not an
   * `OmniRelayError` becomes `internal` (`omnirelay.internal`) and is logged; its message is not sent.
   * @throws OmniRelayError unimplemented `omnirelay.procedure.not_found` for an unknown procedure.
   */
  async dispatch(request: UnaryRequest): Promise<UnaryResponse> {
    const name = request.meta.procedure;
    const spec = this.resolve(name);
    const chain = [...this.middleware, ...(spec.middleware ?? [])];
    const run = (index: number, req: UnaryRequest): Promise<UnaryResponse> => {
      const mw = chain[index];
      if (!mw) return spec.handler(req.message, req.meta).then((message) => ({ message }));
      return mw.handle(req, (next) => run(index + 1, next));
    };
    try {
      return await run(0, request);
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
    }
  }
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
