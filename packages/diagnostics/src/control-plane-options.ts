import type { Clock, Dispatcher, Logger } from "@omnirelay/core";
import type { Registry } from "prom-client";
import type { ControlPlaneAuthOptions } from "./auth.js";
import type { RuntimeToggleOptions } from "./toggles.js";

/** Options of a `ResourceLeaseControlPlane`. */
export interface ResourceLeaseControlPlaneOptions {
  /** Registry for every metric; never prom-client's global one. @defaultValue a new `Registry` */
  readonly registry?: Registry;
  /** Also export prom-client's default Node.js process metrics. @defaultValue false */
  readonly collectDefaultMetrics?: boolean;
  /** Limits the `procedure` label of the HTTP metrics to this dispatcher's procedures. @defaultValue `undefined` */
  readonly dispatcher?: Pick<Dispatcher, "lookup">;
  /** Distinct `procedure` label values kept (later ones are `_other`). @defaultValue 500 */
  readonly maxProcedures?: number;
  /**
   * Peers that get a `peer` label value of their own in the per-peer metrics; the others share `_other`. A value is
   * freed when no health provider knows the peer any more (a `PeerLeaseHealthTracker` forgets idle peers after its
   * `forgetIdleAfterMs`), at a scrape or when a new peer finds every value taken. @defaultValue 50
   */
  readonly maxPeerLabels?: number;
  /** Buckets of the replication-lag and request-duration histograms, ms. @defaultValue 1 ms … 60 s */
  readonly histogramBucketsMs?: readonly number[];
  /** Authentication and admin principals; without it every endpoint is open (bind to a private interface!). */
  readonly auth?: ControlPlaneAuthOptions;
  /**
   * Browser origins (`https://ops.example.com`) besides the control plane's own that may call the state-changing
   * endpoints, e.g. the public origin of a reverse proxy that rewrites `Host`. Requests without an `Origin` header
   * (CLI, curl, programs) are never affected. No CORS headers are served.
   * @defaultValue `[]`
   */
  readonly allowedOrigins?: readonly string[];
  /** Initial log level and tracing settings. */
  readonly toggles?: Omit<RuntimeToggleOptions, "logger">;
  /** `/readyz` fails while a replication sink lags more than this, ms. @defaultValue 30000 */
  readonly maxReplicationLagMs?: number;
  /** Interval of SSE heartbeat comments, ms. @defaultValue 15000 */
  readonly sseHeartbeatIntervalMs?: number;
  /** Largest accepted POST body. @defaultValue 65536 */
  readonly maxBodyBytes?: number;
  /** @defaultValue `systemClock` */
  readonly clock?: Clock;
  /** @defaultValue `silentLogger` */
  readonly logger?: Logger;
}
