import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { integerOption, numberOption, textOption } from "../wire/options.js";
import type { DispatchRules } from "./pending.js";

/**
 * Per-key concurrency, rate and fair sharing. A key is an item's `partitionKey` or one of its attributes (e.g.
 * `tenant`; items without it share the key `""`). `orderedPartitions` is `{ by: "partitionKey", maxActive: 1 }`.
 */
export interface ResourceLeaseKeyOptions {
  /** What an item's key is: `"partitionKey"` or `{ attribute: "tenant" }`. */
  readonly by: "partitionKey" | { readonly attribute: string };
  /** Most active leases per key; a key at its cap is skipped until one of its leases ends. @defaultValue no cap */
  readonly maxActive?: number;
  /** Per-key overrides of `maxActive`. */
  readonly maxActiveByKey?: Readonly<Record<string, number>>;
  /** Most grants per key in a window of `intervalMs` that starts at the key's first grant. @defaultValue no rate */
  readonly rate?: { readonly grants: number; readonly intervalMs: number };
  /**
   * Weighted round-robin across keys with pending work (stride scheduling): a key with a million items pending cannot
   * starve one with ten; priority order holds within a key. @defaultValue false (one global priority order)
   */
  readonly fair?: boolean;
  /** Fair-sharing weights; a key of weight 2 gets twice the grants of a key of weight 1. @defaultValue 1 */
  readonly weights?: Readonly<Record<string, number>>;
}

/** Opt-in priority aging: an item gains one priority level per `msPerLevel` it waits, so low priorities are not starved. */
export interface ResourceLeasePriorityAgingOptions {
  readonly msPerLevel: number;
}

const DAY_MS = 86_400_000;

function keyFunction(by: ResourceLeaseKeyOptions["by"]): (payload: ResourceLeaseItemPayload) => string {
  if (by === "partitionKey") return (p) => p.partitionKey;
  if (typeof by !== "object" || by === null) throw OmniRelayError.invalidOption("keys.by");
  const name = textOption("keys.by.attribute", by.attribute, { max: 128 });
  return (p) => p.attributes?.[name] ?? "";
}

function numberMap(
  name: string,
  map: Readonly<Record<string, number>> | undefined,
  read: (option: string, value: unknown) => number,
): Map<string, number> | undefined {
  if (map === undefined) return undefined;
  if (typeof map !== "object" || map === null) throw OmniRelayError.invalidOption(name);
  return new Map(Object.entries(map).map(([k, v]) => [k, read(`${name}.${k}`, v)]));
}

/**
 * Validates the key, ordering and aging options into the pending set's rules.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` with metadata `option`.
 */
export function resolveDispatchRules(options: {
  readonly keys?: ResourceLeaseKeyOptions;
  readonly orderedPartitions?: boolean;
  readonly priorityAging?: ResourceLeasePriorityAgingOptions;
}): DispatchRules {
  const aging = options.priorityAging;
  const agingMs =
    aging === undefined
      ? 0
      : integerOption("priorityAging.msPerLevel", aging.msPerLevel, { min: 1, max: 365 * DAY_MS });
  const keys = options.keys;
  if (keys === undefined) {
    return options.orderedPartitions ? { keyOf: (p) => p.partitionKey, maxActive: 1, agingMs } : { agingMs };
  }
  if (options.orderedPartitions) {
    throw OmniRelayError.invalidOption("keys", "Give either 'orderedPartitions' or 'keys' (maxActive: 1), not both.");
  }
  const cap = (option: string, value: unknown) => integerOption(option, value, { min: 1 });
  const rate = keys.rate;
  return {
    keyOf: keyFunction(keys.by),
    ...(keys.maxActive !== undefined ? { maxActive: cap("keys.maxActive", keys.maxActive) } : {}),
    ...(keys.maxActiveByKey !== undefined
      ? {
          maxActive: keys.maxActive ?? Number.POSITIVE_INFINITY,
          maxActiveByKey: numberMap("keys.maxActiveByKey", keys.maxActiveByKey, cap)!,
        }
      : {}),
    ...(rate !== undefined
      ? {
          rate: {
            grants: integerOption("keys.rate.grants", rate?.grants, { min: 1 }),
            intervalMs: integerOption("keys.rate.intervalMs", rate?.intervalMs, { min: 1, max: 365 * DAY_MS }),
          },
        }
      : {}),
    fair: keys.fair ?? false,
    ...(keys.weights !== undefined
      ? {
          weights: numberMap("keys.weights", keys.weights, (o, v) =>
            numberOption(o, v, { min: 0, max: 1_000_000, aboveMin: true }),
          )!,
        }
      : {}),
    agingMs,
  };
}
