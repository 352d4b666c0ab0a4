import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

const STORE = "postgres";

/** The five-character SQLSTATE of a server error, or `undefined` for any other failure. */
function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * SQLSTATE classes that say the server cannot take this input, so a retry fails the same way: 22 (data exception:
 * a value out of range, bytes the encoding refuses) and 54 (program limit exceeded: an index row too large).
 */
const REFUSED_INPUT = /^(22|54)/;

/**
 * The coded error of a failed query. A refused input (SQLSTATE class 22 or 54) is invalid-argument, not worth a
 * retry: `record_invalid` for a write, `key_invalid` for a read. Anything else (no answer, a lost connection, a
 * timeout, a refused privilege, a foreign table) is unavailable `store_unavailable`. The driver's error is the cause,
 * and its SQLSTATE travels in metadata `sqlState`.
 */
export function queryFailure(
  error: unknown,
  at: { readonly operation: string; readonly table: string },
): OmniRelayError {
  const reason = error instanceof Error ? error.message : String(error);
  const sqlState = sqlStateOf(error);
  const metadata = { store: STORE, operation: at.operation, ...(sqlState === undefined ? {} : { sqlState }) };
  const write = at.operation === "set" || at.operation === "tryAdd";
  if (sqlState !== undefined && REFUSED_INPUT.test(sqlState) && (write || at.operation === "get")) {
    return new OmniRelayError({
      status: "invalid-argument",
      code: write ? ErrorCodes.deterministic.recordInvalid : ErrorCodes.deterministic.keyInvalid,
      message: `PostgreSQL refused the ${write ? "record" : "key"} of ${at.operation} on ${at.table}: ${reason}`,
      metadata: { ...metadata, field: write ? "record" : "key" },
      cause: error,
    });
  }
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.deterministic.storeUnavailable,
    message: `PostgreSQL ${at.operation} on ${at.table} failed: ${reason}`,
    metadata,
    cause: error,
  });
}
