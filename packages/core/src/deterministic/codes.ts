/**
 * Stable error codes of deterministic capture. Clients match on these strings; never rename one.
 * The status each code travels with is fixed and listed beside it.
 */
export const DeterministicErrorCodes = {
  /** invalid-argument: no `stateStore` was given; metadata `option`. */
  stateStoreRequired: "resourcelease.deterministic.state_store_required",
  /** invalid-argument: the event has no sequence number (below 1); it would collide with every other such event. */
  sequenceRequired: "resourcelease.deterministic.sequence_required",
  /** failed-precondition: the version record of the event's change scope is foreign or outside [min, max]; metadata `key`. */
  versionConflict: "resourcelease.deterministic.version_conflict",
  /** failed-precondition: the effect id is taken by a record that is not an effect; metadata `key`. */
  effectConflict: "resourcelease.deterministic.effect_conflict",
  /** invalid-argument: a state-store key is missing or blank. */
  keyRequired: "resourcelease.deterministic.key_required",
  /** invalid-argument: a record given to a state store is malformed (blank kind, non-integer version, no payload); metadata `field`. */
  recordInvalid: "resourcelease.deterministic.record_invalid",
} as const;

/** Union of every code in {@link DeterministicErrorCodes}. */
export type DeterministicErrorCode = (typeof DeterministicErrorCodes)[keyof typeof DeterministicErrorCodes];

/** Record kind of a version-gate record. */
export const DETERMINISTIC_VERSION_KIND = "omnirelay.version";
/** Record kind of a captured effect (payload: the encoded event JSON). */
export const DETERMINISTIC_EFFECT_KIND = "omnirelay.effect";
