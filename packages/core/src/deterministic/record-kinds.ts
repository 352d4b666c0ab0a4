/** Record kind of a version-gate record. */
export const DETERMINISTIC_VERSION_KIND = "omnirelay.version";
/** Record kind of a captured effect (payload: the encoded event JSON). */
export const DETERMINISTIC_EFFECT_KIND = "omnirelay.effect";
