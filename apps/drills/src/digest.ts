import { createHash } from "node:crypto";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { DeterministicResourceLeaseCoordinator, type DeterministicStateStore } from "@omnirelay/core/deterministic";

/** The effect key of an event in a drill's deterministic store (the coordinator's default, spelled out). */
export function effectKey(changeId: string, sequenceNumber: number): string {
  return `${changeId}/seq/${sequenceNumber}`;
}

/** A coordinator recording events under {@link effectKey}. */
export function drillCoordinator(
  store: DeterministicStateStore,
  changeId: string,
): DeterministicResourceLeaseCoordinator {
  return new DeterministicResourceLeaseCoordinator({
    stateStore: store,
    changeId,
    effectIdFactory: (event: ResourceLeaseReplicationEvent) => effectKey(changeId, event.sequenceNumber),
  });
}

/** What a deterministic store holds for events 1..lastSequence. */
export interface StoreDigest {
  readonly lastSequence: number;
  /** Events 1..lastSequence with an effect record. */
  readonly recorded: number;
  /** Sequence numbers without one (the first 20). */
  readonly missing: number[];
  /** sha256 over every effect record (sequence, kind, version, payload), in sequence order; recordedAt left out. */
  readonly sha256: string;
}

/** Reads the effect record of every event 1..lastSequence and hashes them. */
export async function storeDigest(
  store: DeterministicStateStore,
  scope: { changeId: string; lastSequence: number },
): Promise<StoreDigest> {
  const hash = createHash("sha256");
  const missing: number[] = [];
  let recorded = 0;
  for (let seq = 1; seq <= scope.lastSequence; seq++) {
    const record = await store.get(effectKey(scope.changeId, seq));
    if (record === undefined) {
      if (missing.length < 20) missing.push(seq);
      continue;
    }
    recorded++;
    hash.update(`${seq}|${record.kind}|${record.version}|`);
    hash.update(record.payload);
    hash.update("\n");
  }
  return { lastSequence: scope.lastSequence, recorded, missing, sha256: hash.digest("hex") };
}
