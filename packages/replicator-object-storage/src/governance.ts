import {
  type CallOptions,
  type Logger,
  OmniRelayError,
  type ResourceLeaseEventType,
  type ResourceLeaseItemPayload,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicationSink,
  type ResourceLeaseReplicator,
  silentLogger,
} from "@omnirelay/core";
import type { ResourceLeaseDeterministicOptions } from "@omnirelay/core/deterministic";
import type { ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { checkPrefix, SEGMENT_CONTENT_TYPE } from "./layout.js";
import { checkWriterNumbers, SegmentWriter } from "./segment-writer.js";

/** Schema tag of a {@link GovernanceAuditRecord}. */
export const GOVERNANCE_RECORD_SCHEMA = "omnirelay.governance.audit.v1";

/**
 * One JSON line of the governance audit stream: who did what to which resource, with the ids needed to join it to
 * the replication log and to deterministic capture. Absent values are `null`, so every line has the same columns.
 */
export interface GovernanceAuditRecord {
  readonly schema: typeof GOVERNANCE_RECORD_SCHEMA;
  readonly sequenceNumber: number;
  readonly eventType: ResourceLeaseEventType;
  /** ISO-8601. */
  readonly timestamp: string;
  /** The event's metadata `shard.id` (set by `ShardedResourceLeaseReplicator`). */
  readonly shardId: string | null;
  readonly resourceType: string | null;
  readonly resourceId: string | null;
  readonly partitionKey: string | null;
  /** The peer that owns (or acted on) the lease: the event's `peerId`. */
  readonly ownerPeerId: string | null;
  /** The authenticated principal of the caller. */
  readonly principal: string | null;
  /** Deterministic-capture effect id of the event (see `ResourceLeaseDeterministicOptions.effectIdFactory`). */
  readonly effectId: string;
  readonly leaseId: string | null;
  readonly fencingToken: number | null;
  readonly errorCode: string | null;
}

/**
 * Turns one replication event into audit records: one per resource it touched (a drain or restore snapshot gives
 * one per item), or a single record with null resource fields when it touched none.
 */
export function governanceRecordsOf(
  event: ResourceLeaseReplicationEvent,
  effectIdFactory: (event: ResourceLeaseReplicationEvent) => string,
): GovernanceAuditRecord[] {
  const payloads: (ResourceLeaseItemPayload | undefined)[] = [];
  if (event.payload) payloads.push(event.payload);
  else if (event.item) payloads.push(event.item.payload);
  else if (event.items && event.items.length > 0) for (const item of event.items) payloads.push(item.payload);
  if (payloads.length === 0) payloads.push(undefined);
  const base = {
    schema: GOVERNANCE_RECORD_SCHEMA,
    sequenceNumber: event.sequenceNumber,
    eventType: event.eventType,
    timestamp: new Date(event.timestamp).toISOString(),
    shardId: event.metadata["shard.id"] ?? null,
    ownerPeerId: event.peerId ?? null,
    principal: event.principal ?? null,
    effectId: effectIdFactory(event),
    leaseId: event.ownership?.leaseId ?? null,
    fencingToken: event.ownership?.fencingToken ?? null,
    errorCode: event.error?.code ?? null,
  } as const;
  return payloads.map((p) => ({
    ...base,
    resourceType: p?.resourceType ?? null,
    resourceId: p?.resourceId ?? null,
    partitionKey: p?.partitionKey ?? null,
  }));
}

function effectIdFactoryOf(
  o: Pick<ResourceLeaseDeterministicOptions, "changeId" | "effectIdFactory">,
): (event: ResourceLeaseReplicationEvent) => string {
  if (o.effectIdFactory !== undefined) {
    if (typeof o.effectIdFactory !== "function") {
      throw OmniRelayError.invalidOption("deterministic.effectIdFactory", "effectIdFactory must be a function.");
    }
    return o.effectIdFactory;
  }
  const changeId =
    typeof o.changeId === "string" && o.changeId.trim().length > 0 ? o.changeId.trim() : DEFAULT_CHANGE_ID;
  return (event) => `${changeId}/seq/${event.sequenceNumber}`;
}

const DEFAULT_CHANGE_ID = "resourcelease.replication";

/** Options of {@link GovernanceAuditSink}. */
export interface GovernanceAuditSinkOptions {
  /** Folder of the audit stream (ends with `/`); one per shard, since each shard numbers its own events. @defaultValue 'governance/' */
  readonly keyPrefix?: string;
  /**
   * The `changeId` and `effectIdFactory` configured for deterministic capture, so `effectId` matches its keys.
   * @defaultValue {} (effect id `resourcelease.replication/seq/{sequenceNumber}`, the coordinator's default)
   */
  readonly deterministic?: Pick<ResourceLeaseDeterministicOptions, "changeId" | "effectIdFactory">;
  /** Most events per segment object. @defaultValue 1000 */
  readonly maxSegmentEvents?: number;
  /** The checkpoint object is rewritten after this many segments. @defaultValue 16 */
  readonly checkpointEverySegments?: number;
  /** Sequence number the first event of an empty stream must have. @defaultValue 1 */
  readonly firstSequence?: number;
  /** @defaultValue silentLogger */
  readonly logger?: Logger;
}

/**
 * A governance feed: writes JSON-lines {@link GovernanceAuditRecord}s to object storage with the same immutable,
 * gap-checked, create-if-absent segment layout as the replicator (`{prefix}events/…/{first sequence}.jsonl`).
 * Use it as a replicator (in a `CompositeResourceLeaseReplicator`) or as a sink.
 */
export class GovernanceAuditSink implements ResourceLeaseReplicator, ResourceLeaseReplicationSink, AsyncDisposable {
  /** The validated key prefix. */
  readonly keyPrefix: string;
  private readonly writer: SegmentWriter;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`. */
  constructor(store: ResourceLeaseObjectStore, options: GovernanceAuditSinkOptions = {}) {
    if (!store || typeof store.put !== "function")
      throw OmniRelayError.invalidOption("store", "store must be a ResourceLeaseObjectStore.");
    this.keyPrefix = checkPrefix(options.keyPrefix ?? "governance/", "keyPrefix");
    const effectIdFactory = effectIdFactoryOf(options.deterministic ?? {});
    this.writer = new SegmentWriter({
      store,
      keyPrefix: this.keyPrefix,
      ...checkWriterNumbers(options),
      logger: options.logger ?? silentLogger,
      contentType: SEGMENT_CONTENT_TYPE,
      what: "governance audit sink",
      encode: (events) => {
        let out = "";
        for (const event of events) {
          for (const record of governanceRecordsOf(event, effectIdFactory)) out += `${JSON.stringify(record)}\n`;
        }
        return out;
      },
    });
  }

  /**
   * Writes the records of `events` (which must continue the stream at exactly the last sequence + 1).
   * @throws OmniRelayError as `ObjectStorageResourceLeaseReplicator.publish`.
   */
  publish(events: readonly ResourceLeaseReplicationEvent[], options: CallOptions = {}): Promise<void> {
    return this.writer.append(events, options.signal);
  }

  /**
   * Writes the records of one event.
   * @throws OmniRelayError as {@link publish}.
   */
  apply(event: ResourceLeaseReplicationEvent, options: CallOptions = {}): Promise<void> {
    return this.writer.append([event], options.signal);
  }

  /** Sequence number of the last written event. */
  lastSequence(): Promise<number> {
    return this.writer.lastSequence();
  }

  /** Waits for pending writes and refuses later ones. Idempotent. */
  close(): Promise<void> {
    return this.writer.close();
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
