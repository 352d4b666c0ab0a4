import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

/** `PublishRequest.batch` and `PublishBatch.events` (hub.proto). */
const BATCH_FIELD = 2;
const EVENTS_FIELD = 1;

/**
 * Events in the batch of an encoded `PublishRequest`, counted from the wire without decoding them (every `batch`
 * field counts: protobuf merges repeated ones). `undefined` when the bytes are not well-formed protobuf: the decoder
 * then reports them. Internal.
 */
export function countBatchEvents(bytes: Uint8Array): number | undefined {
  try {
    const reader = new BinaryReader(bytes);
    let count = 0;
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field !== BATCH_FIELD || wireType !== WireType.LengthDelimited) {
        reader.skip(wireType, field);
        continue;
      }
      const batch = new BinaryReader(reader.bytes());
      while (batch.pos < batch.len) {
        const [inner, innerType] = batch.tag();
        if (inner === EVENTS_FIELD) count++;
        batch.skip(innerType, inner);
      }
    }
    return count;
  } catch {
    return undefined;
  }
}

/**
 * The refusal of a Publish batch with more than `max` events: invalid-argument
 * `resourcelease.replication.grpc.protocol` (metadata `field: events`, `limit`). Internal.
 */
export function batchTooLarge(count: number, max: number): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.replicationHub.protocol,
    message: `A publish batch may hold at most ${max} events; this one has ${count}. Send smaller batches.`,
    metadata: { field: "events", limit: String(max) },
  });
}
