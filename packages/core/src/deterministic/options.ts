import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { DeterministicStateStore } from "../contracts/stores.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock } from "../util/clock.js";
import { integerOption } from "../wire/options.js";

/** Options of {@link DeterministicResourceLeaseCoordinator}. */
export interface ResourceLeaseDeterministicOptions {
  /** Where version gates and effects are recorded. Required. */
  readonly stateStore: DeterministicStateStore;
  /** Prefix of every key. Blank means the default. @defaultValue `"resourcelease.replication"` */
  readonly changeId?: string;
  /** Oldest accepted version of an existing gate record; clamped to at least 1. @defaultValue 1 */
  readonly minVersion?: number;
  /** Newest accepted version, and the version new gate records get; clamped to at least `minVersion`. @defaultValue `minVersion` */
  readonly maxVersion?: number;
  /** Effect key of an event; must be unique per event. @defaultValue `` event => `${changeId}/seq/${event.sequenceNumber}` `` */
  readonly effectIdFactory?: (event: ResourceLeaseReplicationEvent) => string;
  /** Source of `recordedAt`. @defaultValue systemClock */
  readonly clock?: Clock;
}

/** {@link ResourceLeaseDeterministicOptions} with every default applied. */
export interface ResolvedDeterministicOptions {
  readonly stateStore: DeterministicStateStore;
  readonly changeId: string;
  readonly minVersion: number;
  readonly maxVersion: number;
  readonly effectIdFactory: (event: ResourceLeaseReplicationEvent) => string;
  readonly clock: Clock;
}

const defaultChangeId = "resourcelease.replication";

function version(option: string, value: number | undefined, fallback: number): number {
  return integerOption(option, value, { min: Number.MIN_SAFE_INTEGER, fallback });
}

/**
 * Validates deterministic-capture options and applies the defaults.
 * @throws OmniRelayError invalid-argument `resourcelease.deterministic.state_store_required` (no store, metadata
 *   `option=stateStore`); `resourcelease.options.invalid` for a non-integer version or a non-function factory.
 */
export function resolveDeterministicOptions(options: ResourceLeaseDeterministicOptions): ResolvedDeterministicOptions {
  const store = options?.stateStore;
  if (
    store === undefined ||
    store === null ||
    typeof store.get !== "function" ||
    typeof store.set !== "function" ||
    typeof store.tryAdd !== "function"
  ) {
    throw new OmniRelayError({
      status: "invalid-argument",
      code: ErrorCodes.deterministic.stateStoreRequired,
      message: "A deterministic state store is required.",
      metadata: {
        option: "stateStore",
      },
    });
  }
  const changeId =
    typeof options.changeId === "string" && options.changeId.trim().length > 0
      ? options.changeId.trim()
      : defaultChangeId;
  const minVersion = Math.max(1, version("minVersion", options.minVersion, 1));
  const maxVersion = Math.max(minVersion, version("maxVersion", options.maxVersion, minVersion));
  const factory = options.effectIdFactory;
  if (factory !== undefined && typeof factory !== "function") {
    throw OmniRelayError.invalidOption("effectIdFactory", "effectIdFactory must be a function.");
  }
  return {
    stateStore: store,
    changeId,
    minVersion,
    maxVersion,
    effectIdFactory: factory ?? ((event) => `${changeId}/seq/${event.sequenceNumber}`),
    clock: options.clock ?? systemClock,
  };
}
