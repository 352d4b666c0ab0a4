/** The resourcelease procedures: the dispatcher component, the typed client and shard resolution. */
export {
  type ClientEnqueueResult,
  ResourceLeaseClient,
  type ResourceLeaseClientCallOptions,
  type ResourceLeaseClientOptions,
} from "./client.js";
export {
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseDispatcherComponentOptions,
  type ResourceLeaseVerb,
  ResourceLeaseVerbs,
} from "./component.js";
export type {
  ResourceLeaseEndpoint,
  ResourceLeaseEndpointChange,
  ResourceLeaseFailoverOptions,
} from "./endpoints.js";
/** Each `resourcelease::*` verb's request and response message types (`EnqueueRequest`, `LeaseResponse`, …). */
export type * as ResourceLeaseMessages from "./messages.js";
export { ResourceLeaseProcedures, type ResourceLeaseRequest } from "./procedures.js";
export { createShardResolver, type ShardResolver, type ShardResolverOptions } from "./shard.js";
