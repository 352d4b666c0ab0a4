import { type Logger, silentLogger } from "../contracts/health.js";
import { isOmniRelayError, OmniRelayError, omniError } from "../errors/omnirelay-error.js";
import { DispatcherErrorCodes, decodeJsonBody, encodeJsonBody } from "./json-codec.js";
import type {
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

/** A JSON procedure: gets the decoded body, returns a JSON-serialisable result. */
export type JsonUnaryHandler = (body: Record<string, unknown>, meta: RequestMeta) => Promise<unknown>;

/**
 * Hosts procedures and runs each call through the inbound middleware chain. Transports (HTTP, gRPC) decode the
 * wire format into a {@link UnaryRequest} and call {@link Dispatcher.dispatch}.
 */
export class Dispatcher {
  readonly service: string;
  private readonly registry = new Map<string, ProcedureSpec>();
  private readonly middleware: UnaryInboundMiddleware[];
  private readonly logger: Logger;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a blank service name. */
  constructor(options: DispatcherOptions) {
    if (typeof options.service !== "string" || options.service.trim().length === 0) {
      throw omniError("invalid-argument", "resourcelease.options.invalid", "service is required.", {
        option: "service",
      });
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
   * Registers a procedure. Names are case-insensitive.
   * @throws OmniRelayError already-exists `omnirelay.procedure.duplicate` when the name is taken.
   */
  register(spec: ProcedureSpec): void {
    const key = spec.name.trim().toLowerCase();
    if (key.length === 0) {
      throw omniError("invalid-argument", "resourcelease.options.invalid", "A procedure needs a name.", {
        option: "name",
      });
    }
    if (this.registry.has(key)) {
      throw omniError(
        "already-exists",
        DispatcherErrorCodes.duplicateProcedure,
        `Procedure '${spec.name}' is already registered on service '${this.service}'.`,
        { procedure: spec.name },
      );
    }
    this.registry.set(key, spec);
  }

  /** Registers a JSON procedure: the body is decoded to an object and the result encoded as JSON. */
  registerJson(
    name: string,
    handler: JsonUnaryHandler,
    options: { middleware?: readonly UnaryInboundMiddleware[]; labels?: Readonly<Record<string, string>> } = {},
  ): void {
    this.register({
      name,
      ...options,
      handler: async (request) => {
        const result = await handler(decodeJsonBody(request.body), request.meta);
        return { body: encodeJsonBody(result), encoding: "json" };
      },
    });
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
   * Runs a call: dispatcher middleware, then the procedure's own middleware, then its handler. Anything thrown that
   * is not an `OmniRelayError` becomes `internal` (`omnirelay.internal`) and is logged; its message is not sent.
   * @throws OmniRelayError unimplemented `omnirelay.procedure.not_found` for an unknown procedure.
   */
  async dispatch(request: UnaryRequest): Promise<UnaryResponse> {
    const name = request.meta.procedure;
    if (!name) {
      throw omniError("invalid-argument", DispatcherErrorCodes.procedureRequired, "No procedure was named.", {
        header: "rpc-procedure",
      });
    }
    const spec = this.lookup(name);
    if (!spec) {
      throw omniError(
        "unimplemented",
        DispatcherErrorCodes.unknownProcedure,
        `Procedure '${name}' is not registered for service '${this.service}'.`,
        { procedure: name },
      );
    }
    const chain = [...this.middleware, ...(spec.middleware ?? [])];
    const run = (index: number, req: UnaryRequest): Promise<UnaryResponse> => {
      const mw = chain[index];
      if (!mw) return spec.handler(req);
      return mw.handle(req, (next) => run(index + 1, next));
    };
    try {
      return await run(0, request);
    } catch (error) {
      if (isOmniRelayError(error)) throw error;
      if (request.meta.signal.aborted) {
        const reason = request.meta.signal.reason;
        if (isOmniRelayError(reason)) throw reason;
        throw omniError("cancelled", DispatcherErrorCodes.cancelled, "The call was cancelled.");
      }
      this.logger.error({ err: error, procedure: name }, "Procedure failed with an unexpected error.");
      throw new OmniRelayError({
        status: "internal",
        code: DispatcherErrorCodes.internal,
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
