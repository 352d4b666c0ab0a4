import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

/** already-exists `omnirelay.control.duplicate` for a name registered twice. */
export function duplicate(kind: string, name: string): OmniRelayError {
  return new OmniRelayError({
    status: "already-exists",
    code: ErrorCodes.controlPlane.duplicate,
    message: `A ${kind} named '${name}' is already registered.`,
    metadata: { name },
  });
}

/** unavailable `omnirelay.control.closed`. */
export function closedError(): OmniRelayError {
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.controlPlane.closed,
    message: "The control plane is closed.",
  });
}
