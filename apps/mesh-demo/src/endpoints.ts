import {
  HttpOutbound,
  isOmniRelayError,
  type ProcedureDefinition,
  ResourceLeaseClient,
  type UnaryOutbound,
  type UnaryRequest,
  type UnaryResponse,
} from "@omnirelay/core";
import { authenticated, type MeshAuth } from "./auth.js";
import type { MeshDemoConfig } from "./config.js";

/**
 * A queue client of the JetStream mode: given every dispatcher node's URL (`--endpoints`), it follows the shard's
 * owner — `resourcelease.not_owner` answers, nodes that cannot be reached — across failovers.
 */
export function followingClient(
  config: MeshDemoConfig & MeshAuth,
  options: { readonly namespace: string; readonly caller: string; readonly timeoutMs?: number },
): ResourceLeaseClient {
  return new ResourceLeaseClient({
    endpoints: config.endpoints,
    connect: (url) => authenticated(new HttpOutbound({ url }), config.authSecret, options.caller),
    namespace: options.namespace,
    caller: options.caller,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}

/**
 * Sends each call to the first of several nodes that answers: a node that cannot be reached (status `unavailable`)
 * is skipped and the next one tried. For `demo.catalog::apply`, which every node serves (the catalog's claims are in
 * the store all nodes share), so retrying it elsewhere applies it at most once.
 */
export class FailoverOutbound implements UnaryOutbound {
  private current = 0;

  constructor(private readonly outbounds: readonly UnaryOutbound[]) {}

  async call<Req, Res>(
    definition: ProcedureDefinition<Req, Res>,
    request: UnaryRequest<Req>,
  ): Promise<UnaryResponse<Res>> {
    let last: unknown;
    for (let tried = 0; tried < this.outbounds.length; tried++) {
      const index = (this.current + tried) % this.outbounds.length;
      try {
        const response = await (this.outbounds[index] as UnaryOutbound).call(definition, request);
        this.current = index;
        return response;
      } catch (error) {
        if (!isOmniRelayError(error) || error.status !== "unavailable") throw error;
        last = error;
      }
    }
    throw last;
  }

  async close(): Promise<void> {
    await Promise.all(this.outbounds.map((o) => o.close?.()));
  }
}
