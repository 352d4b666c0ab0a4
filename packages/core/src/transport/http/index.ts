/** HTTP transport: inbound server and outbound client. */
export {
  HttpInbound,
  type HttpInboundOptions,
  type HttpInboundTlsOptions,
  type ReadinessCheck,
} from "./inbound.js";
export { HttpOutbound, type HttpOutboundOptions, type HttpOutboundTlsOptions } from "./outbound.js";
