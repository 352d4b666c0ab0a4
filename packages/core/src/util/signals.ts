import { setMaxListeners } from "node:events";

// On Node 20 an AbortSignal is expensive to build and to collect: each one survives the young generation (~370 bytes
// promoted) and costs 4–6 µs with the collection it causes on a 2-core host, against well under 1 µs for a plain
// object of the same size. A unary call used to build one on each side for nothing: the client for a call given no
// signal, the dispatcher's deadline step for a signal it could share with the inbound's. See docs/performance.md.

/**
 * One signal that never aborts, for calls given none. Shared: a listener added to it is never called, and it warns
 * about no number of them (calls in flight each add one while they run). Internal.
 */
export const neverAborts: AbortSignal = new AbortController().signal;
setMaxListeners(0, neverAborts);

/**
 * Where an inbound may put the `AbortController` whose signal it gave a call as `meta.signal`: the dispatcher's
 * deadline step then aborts that signal at the deadline (with the deadline error as its reason) instead of building
 * a second signal linked to it. Middleware that spreads the meta carries it along; the deadline step uses it only
 * while `meta.signal` is still that controller's signal. The HTTP and gRPC inbounds set it.
 */
export const callAbort: unique symbol = Symbol("omnirelay.callAbort");

/** A request meta that may carry its inbound's controller under {@link callAbort}. */
export interface WithCallAbort {
  readonly [callAbort]?: AbortController;
}
