/**
 * Where a long-lived part stands: the one vocabulary of the dispatcher, its inbounds (HTTP, gRPC), the replication hub
 * and client replicator, the worker and the queue.
 *
 * - `idle`: built, not started; `close()` from here goes straight to `stopped`.
 * - `starting`: `start()` is binding, opening or catching up.
 * - `running`: serving (or, for a client, working).
 * - `draining`: `close()`/`stop()` was called: new work is refused while work in flight finishes, up to a grace.
 * - `stopped`: closed for good; a stopped part is not started again (build a new one).
 *
 * A part visits the states in this order and may skip some: a queue is `running` from construction, a worker's
 * `start()` is synchronous and so never `starting`. A queue's drain mode (`drain`/`restore`) and a replication fault
 * are not lifecycle states: they are reported in `stats().state` on the wire.
 */
export type LifecycleState = "idle" | "starting" | "running" | "draining" | "stopped";
