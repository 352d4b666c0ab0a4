/** HTTP transport: inbound server and outbound client. */
export { HttpInbound } from "./inbound.js";
export type {
  HttpInboundOptions,
  HttpInboundSessionOptions,
  HttpInboundTlsOptions,
  ReadinessCheck,
} from "./inbound-options.js";
export { HttpOutbound, type HttpOutboundOptions, type HttpOutboundTlsOptions } from "./outbound.js";
