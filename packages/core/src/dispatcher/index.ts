/** The dispatcher: procedure registry and inbound middleware chain. */
export { composeInbound, Dispatcher, type DispatcherOptions, type JsonUnaryHandler } from "./dispatcher.js";
export { DispatcherErrorCodes, decodeJsonBody, encodeJsonBody } from "./json-codec.js";
export type {
  ProcedureSpec,
  RequestMeta,
  TransportKind,
  TransportSecurity,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryOutbound,
  UnaryOutboundMiddleware,
  UnaryRequest,
  UnaryResponse,
} from "./types.js";
