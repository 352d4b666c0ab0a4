/** The dispatcher: procedure registry and inbound middleware chain. */
export {
  composeInbound,
  Dispatcher,
  type DispatcherDeadlineOptions,
  type DispatcherOptions,
  type JsonUnaryHandler,
  jsonProcedure,
  type ProcedureRegistration,
} from "./dispatcher.js";
export { decodeJsonBody, encodeJsonBody } from "./json-codec.js";
export {
  type LifecycleComponent,
  LifecycleGroup,
  type LifecycleGroupOptions,
  type LifecycleInbound,
  type LifecycleStopOptions,
} from "./lifecycle.js";
export type {
  ProcedureDefinition,
  ProcedureSpec,
  RequestMeta,
  TransportKind,
  TransportSecurity,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryOutbound,
  UnaryRequest,
  UnaryResponse,
} from "./types.js";
