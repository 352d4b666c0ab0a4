import type { NatsConnection } from "@nats-io/transport-node";
import { OmniRelayError } from "@omnirelay/core";
import { integerOption, textOption } from "@omnirelay/core/wire";

/** Options of {@link JetStreamResourceLeaseEventLog.open}. */
export interface JetStreamEventLogOptions {
  /**
   * An open NATS connection to use; the log neither drains nor closes it. Give this or `servers`.
   */
  readonly connection?: NatsConnection;
  /** NATS server URLs (`nats://127.0.0.1:4222`) for a connection the log opens and closes itself. */
  readonly servers?: string | readonly string[];
  /** The shard whose events this log holds: one subject token (letters, digits, `_`, `-`). */
  readonly shard: string;
  /**
   * The JetStream stream that holds every shard's subject; created when absent (file storage, `replicas`, subjects
   * `<subjectPrefix>.>`). Letters, digits, `_`, `-`. @defaultValue "OMNIRELAY_LOG"
   */
  readonly stream?: string;
  /** Subject prefix; a shard's events go to `<subjectPrefix>.<shard>`. @defaultValue "omnirelay-log" */
  readonly subjectPrefix?: string;
  /**
   * Replicas of a stream this log creates: 1 on a laptop, 3 in production (an append is then acknowledged once a
   * quorum stored it). An existing stream keeps its own setting. @defaultValue 1
   */
  readonly replicas?: number;
  /**
   * How long one send of an append waits for JetStream's acknowledgement; also how often a read that is waiting for
   * its next message checks that the stream still holds it (a read of a purged or deleted stream then fails, after one
   * to two of these).
   * @defaultValue 5000
   */
  readonly appendTimeoutMs?: number;
  /**
   * How long an append that got no answer (a timeout, no responders while the stream elects a new leader after a
   * server died, a dropped connection) is sent again — the same message with the same `Nats-Msg-Id`, so one that did
   * land is not stored twice — before it fails with `append_failed` and faults the log. Keep it well below the
   * stream's duplicate window (2 minutes by default). 0 sends once. @defaultValue 20000
   */
  readonly appendRetryMs?: number;
  /** Messages the ordered consumer of a read asks for at a time. @defaultValue 256 */
  readonly readBatchMessages?: number;
  /**
   * The monitoring endpoint of the server (`http://127.0.0.1:8222`, its `-m` port): `describe()` reads its `/varz`
   * to report whether it fsyncs every write. Without it, the sync setting is known only for servers before 2.10.
   */
  readonly monitorUrl?: string;
}

/** Options after checking, with defaults. Internal. */
export interface ResolvedEventLogOptions {
  readonly connection: NatsConnection | undefined;
  readonly servers: readonly string[];
  readonly shard: string;
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly subject: string;
  readonly replicas: number;
  readonly appendTimeoutMs: number;
  readonly appendRetryMs: number;
  readonly readBatchMessages: number;
  readonly monitorUrl: string | undefined;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

function token(name: string, value: unknown, fallback?: string): string {
  const read = textOption(name, value, fallback === undefined ? { max: 200 } : { max: 200, fallback });
  if (!TOKEN.test(read)) throw OmniRelayError.invalidOption(name, `Option '${name}' must match ${TOKEN.source}.`);
  return read;
}

/** Checks the options and fills in defaults. Internal. @throws OmniRelayError invalid-argument `resourcelease.options.invalid`. */
export function resolveEventLogOptions(options: JetStreamEventLogOptions): ResolvedEventLogOptions {
  if (options === null || typeof options !== "object") {
    throw OmniRelayError.invalidOption("options", "JetStreamResourceLeaseEventLog.open needs an options object.");
  }
  const servers = options.servers === undefined ? [] : [options.servers].flat();
  if ((options.connection === undefined) === (servers.length === 0)) {
    throw OmniRelayError.invalidOption("connection", "Give exactly one of 'connection' and 'servers'.");
  }
  for (const [i, server] of servers.entries()) textOption(`servers[${i}]`, server, { max: 2000 });
  const shard = token("shard", options.shard);
  const prefix = textOption("subjectPrefix", options.subjectPrefix, { max: 200, fallback: "omnirelay-log" });
  if (!prefix.split(".").every((part) => TOKEN.test(part))) {
    throw OmniRelayError.invalidOption("subjectPrefix", "Option 'subjectPrefix' must be dot-separated tokens.");
  }
  return {
    connection: options.connection,
    servers,
    shard,
    stream: token("stream", options.stream, "OMNIRELAY_LOG"),
    subjectPrefix: prefix,
    subject: `${prefix}.${shard}`,
    replicas: integerOption("replicas", options.replicas, { min: 1, max: 5, fallback: 1 }),
    appendTimeoutMs: integerOption("appendTimeoutMs", options.appendTimeoutMs, { min: 1, fallback: 5000 }),
    appendRetryMs: integerOption("appendRetryMs", options.appendRetryMs, { min: 0, max: 60_000, fallback: 20_000 }),
    readBatchMessages: integerOption("readBatchMessages", options.readBatchMessages, {
      min: 1,
      max: 10_000,
      fallback: 256,
    }),
    monitorUrl:
      options.monitorUrl === undefined ? undefined : textOption("monitorUrl", options.monitorUrl, { max: 2000 }),
  };
}
