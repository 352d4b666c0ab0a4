import {
  isOmniRelayError,
  type ResourceLeaseDeadLetterItem,
  type ResourceLeaseGrant,
  type ResourceLeaseOwnershipToken,
  type ResourceLeasePendingItem,
} from "@omnirelay/core";
import { decodePendingItem, encodePendingItem, type ResourceLeasePendingItemJson } from "@omnirelay/core/wire";
import { usageError } from "./output.js";

const iso = (ms: number) => new Date(ms).toISOString();

/** A lease grant as its wire JSON (docs/protocol.md "grant"). */
export function grantToJson(grant: ResourceLeaseGrant): Record<string, unknown> {
  const { payload, sequenceId, attempt, enqueuedAt, lastError } = grant;
  return {
    ...encodePendingItem({ payload, sequenceId, attempt, enqueuedAt, ...(lastError ? { lastError } : {}) }),
    ownershipToken: { ...grant.ownershipToken },
    ...(grant.ownerPeerId ? { ownerPeerId: grant.ownerPeerId } : {}),
    leaseExpiresAt: iso(grant.leaseExpiresAt),
  };
}

/** A dead-lettered item as its wire JSON (pendingItem + deadLetteredAt, reason). */
export function deadLetterToJson(item: ResourceLeaseDeadLetterItem): Record<string, unknown> {
  const { deadLetteredAt, reason, ...pending } = item;
  return { ...encodePendingItem(pending), deadLetteredAt: iso(deadLetteredAt), reason };
}

/** The drain file: an envelope around the wire DTOs of the drained items. */
export interface DrainFile {
  readonly version: 1;
  readonly namespace: string;
  readonly drainedAt: string;
  readonly source?: string;
  readonly items: readonly ResourceLeasePendingItemJson[];
}

/** Builds the drain-file envelope. */
export function toDrainFile(namespace: string, items: readonly ResourceLeasePendingItem[], source: string): DrainFile {
  return { version: 1, namespace, drainedAt: new Date().toISOString(), source, items: items.map(encodePendingItem) };
}

/**
 * Parses a drain file (or a bare `{items}` / array, as the `drain` procedure answers) into pending items.
 * @throws CliError usage when the file is not a drain file or an item is malformed (naming the field).
 */
export function parseDrainFile(text: string, path: string): { namespace?: string; items: ResourceLeasePendingItem[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw usageError(`'${path}' is not JSON: ${(error as Error).message}`);
  }
  const envelope = (Array.isArray(doc) ? { items: doc } : doc) as Partial<DrainFile> | null;
  if (!envelope || typeof envelope !== "object" || !Array.isArray(envelope.items)) {
    throw usageError(`'${path}' has no items list (expected the output of 'drain --out').`);
  }
  if (envelope.version !== undefined && envelope.version !== 1) {
    throw usageError(`'${path}' has version ${String(envelope.version)}; this CLI reads version 1.`);
  }
  try {
    const items = envelope.items.map((item, i) => decodePendingItem(item, { field: `items[${i}]` }));
    return { ...(typeof envelope.namespace === "string" ? { namespace: envelope.namespace } : {}), items };
  } catch (error) {
    if (isOmniRelayError(error)) {
      throw usageError(`'${path}': ${error.code}: ${error.message} (${error.metadata.field ?? "item"})`);
    }
    throw error;
  }
}

/**
 * The ownership token from `--token-json` or the four `--sequence-id/--attempt/--lease-id/--fencing-token` flags.
 * @throws CliError usage when neither form is complete.
 */
export function tokenFromFlags(o: {
  tokenJson?: string;
  sequenceId?: number;
  attempt?: number;
  leaseId?: string;
  fencingToken?: number;
}): ResourceLeaseOwnershipToken {
  if (o.tokenJson !== undefined) {
    let t: Record<string, unknown>;
    try {
      t = JSON.parse(o.tokenJson) as Record<string, unknown>;
    } catch {
      throw usageError("--token-json is not JSON.");
    }
    // Accept a whole grant too: `lease --json` output items can be passed as they are.
    if (t && typeof t === "object" && t.ownershipToken && typeof t.ownershipToken === "object") {
      t = t.ownershipToken as Record<string, unknown>;
    }
    const { sequenceId, attempt, leaseId, fencingToken } = t ?? {};
    if (
      !Number.isSafeInteger(sequenceId) ||
      !Number.isSafeInteger(attempt) ||
      typeof leaseId !== "string" ||
      !Number.isSafeInteger(fencingToken)
    ) {
      throw usageError("--token-json needs {sequenceId, attempt, leaseId, fencingToken}.");
    }
    return {
      sequenceId: sequenceId as number,
      attempt: attempt as number,
      leaseId,
      fencingToken: fencingToken as number,
    };
  }
  const { sequenceId, attempt, leaseId, fencingToken } = o;
  if (sequenceId === undefined || attempt === undefined || leaseId === undefined || fencingToken === undefined) {
    throw usageError("give --token-json '<json>' or all of --sequence-id, --attempt, --lease-id, --fencing-token.");
  }
  return { sequenceId, attempt, leaseId, fencingToken };
}
