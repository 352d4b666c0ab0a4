import type { CallOptions, ResourceLeaseReplicationEvent, ResourceLeaseReplicationSink } from "../contracts/events.js";
import type { DeterministicRecord } from "../contracts/stores.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { withoutReplayTag } from "../replication/replay-tag.js";
import { encodeReplicationEvent } from "../wire/event.js";
import {
  type ResolvedDeterministicOptions,
  type ResourceLeaseDeterministicOptions,
  resolveDeterministicOptions,
} from "./options.js";
import { DETERMINISTIC_EFFECT_KIND, DETERMINISTIC_VERSION_KIND } from "./record-kinds.js";

/** Options of {@link DeterministicResourceLeaseCoordinator.record}. */
export interface DeterministicRecordOptions extends CallOptions {
  /** Side effect to run once per event: only by the call that recorded the event's effect. */
  readonly execute?: (event: ResourceLeaseReplicationEvent) => Promise<void>;
}

/** Outcome of {@link DeterministicResourceLeaseCoordinator.record}. */
export interface DeterministicRecordResult {
  /** True when this call stored the effect (and ran `execute`); false when it was recorded before. */
  readonly recorded: boolean;
  /** Key the effect is stored under. */
  readonly effectId: string;
}

const encoder = new TextEncoder();

/**
 * Records each replication event once in a {@link DeterministicStateStore}, keyed by its sequence number, so a
 * consumer can run a side effect at most once per event even when events are replayed or several processes share
 * the store. Use it as a sink (`apply` records without a side effect) or call `record` with `execute`.
 *
 * Per event two records are written:
 * - the version gate `${changeId}.${seq}` (kind `omnirelay.version`, version = `maxVersion`, payload `{"version":n}`);
 *   an existing gate must be kind `omnirelay.version` with a version in [minVersion, maxVersion];
 * - the effect at `effectIdFactory(event)` (kind `omnirelay.effect`, the gate's version, payload = the full event
 *   JSON envelope as UTF-8, see `encodeReplicationEvent`, without the `lease.replay` tag of a replayed delivery),
 *   inserted with `tryAdd` — the first writer wins.
 *
 * Claim, then execute: `execute` runs only in the call whose `tryAdd` won, so it runs at most once across processes
 * sharing the store. If the process crashes (or `execute` fails) after the claim, the effect is not retried; make
 * `execute` itself resumable if that matters.
 */
export class DeterministicResourceLeaseCoordinator implements ResourceLeaseReplicationSink {
  private readonly options: ResolvedDeterministicOptions;

  /** @throws OmniRelayError see {@link resolveDeterministicOptions}. */
  constructor(options: ResourceLeaseDeterministicOptions) {
    this.options = resolveDeterministicOptions(options);
  }

  /** The resolved options (change id, versions). */
  get settings(): ResolvedDeterministicOptions {
    return this.options;
  }

  /** Records `event` (no side effect). Replays resolve without writing. @throws see {@link record}. */
  async apply(event: ResourceLeaseReplicationEvent, options?: CallOptions): Promise<void> {
    await this.record(event, options);
  }

  /**
   * Records `event` once and runs `options.execute` when this call recorded it.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.sequence_required` when `sequenceNumber` < 1;
   *   failed-precondition `resourcelease.deterministic.version_conflict` or `.effect_conflict`; invalid-argument
   *   `resourcelease.deterministic.key_required` for a blank effect id; cancelled `resourcelease.cancelled`;
   *   whatever `execute` or the store throws.
   */
  async record(
    event: ResourceLeaseReplicationEvent,
    options: DeterministicRecordOptions = {},
  ): Promise<DeterministicRecordResult> {
    const seq = event.sequenceNumber;
    if (!Number.isSafeInteger(seq) || seq < 1) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.deterministic.sequenceRequired,
        message: `Deterministic capture needs the queue-assigned sequence number (>= 1), got ${String(seq)}.`,
        metadata: { field: "sequenceNumber" },
      });
    }
    const { stateStore, changeId, effectIdFactory, clock } = this.options;
    const effectId = effectIdFactory(event);
    if (typeof effectId !== "string" || effectId.trim().length === 0) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.deterministic.keyRequired,
        message: "effectIdFactory returned a blank id.",
        metadata: {
          field: "effectId",
        },
      });
    }
    throwIfAborted(options.signal);
    const version = await this.requireVersion(`${changeId}.${seq}`);
    // The effect holds the event as the log stores it: a replayed copy and the live one record the same bytes.
    const payload = encoder.encode(JSON.stringify(encodeReplicationEvent(withoutReplayTag(event))));
    throwIfAborted(options.signal);
    const effect: DeterministicRecord = { kind: DETERMINISTIC_EFFECT_KIND, version, payload, recordedAt: clock.now() };
    if (!(await stateStore.tryAdd(effectId, effect))) {
      const existing = await stateStore.get(effectId);
      if (existing !== undefined && existing.kind !== DETERMINISTIC_EFFECT_KIND) {
        throw new OmniRelayError({
          status: "failed-precondition",
          code: ErrorCodes.deterministic.effectConflict,
          message: `Key '${effectId}' holds a '${existing.kind}' record, not an effect.`,
          metadata: { key: effectId, kind: existing.kind },
        });
      }
      return { recorded: false, effectId };
    }
    if (options.execute !== undefined) await options.execute(event);
    return { recorded: true, effectId };
  }

  /** Reads or creates the version gate at `key` and returns its version. */
  private async requireVersion(key: string): Promise<number> {
    const { stateStore, minVersion, maxVersion, clock } = this.options;
    let existing = await stateStore.get(key);
    if (existing === undefined) {
      const gate: DeterministicRecord = {
        kind: DETERMINISTIC_VERSION_KIND,
        version: maxVersion,
        payload: encoder.encode(JSON.stringify({ version: maxVersion })),
        recordedAt: clock.now(),
      };
      if (await stateStore.tryAdd(key, gate)) return maxVersion;
      // Lost a race with another writer: its record decides.
      existing = await stateStore.get(key);
    }
    if (
      existing === undefined ||
      existing.kind !== DETERMINISTIC_VERSION_KIND ||
      existing.version < minVersion ||
      existing.version > maxVersion
    ) {
      const found = existing === undefined ? "nothing" : `kind '${existing.kind}' version ${existing.version}`;
      throw new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.deterministic.versionConflict,
        message: `Version gate '${key}' holds ${found}; expected '${DETERMINISTIC_VERSION_KIND}' in [${minVersion}, ${maxVersion}].`,
        metadata: {
          key,
          ...(existing ? { kind: existing.kind, version: String(existing.version) } : {}),
        },
      });
    }
    return existing.version;
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new OmniRelayError({
      status: "cancelled",
      code: ErrorCodes.resourceLease.cancelled,
      message: "The deterministic record call was cancelled.",
    });
  }
}
