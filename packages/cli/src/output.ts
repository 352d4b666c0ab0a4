import { ErrorCodes, isOmniRelayError } from "@omnirelay/core";

/** Exit codes of the `omnirelay` command (also listed in `omnirelay --help` and docs/guides/operations.md). */
export const ExitCodes = {
  /** The command did what it was asked. */
  ok: 0,
  /** A bug in the CLI itself (an unexpected exception). */
  internal: 1,
  /** Bad usage: unknown command or flag, bad flag value, unreadable or malformed input file. */
  usage: 2,
  /** The dispatcher (or control plane) answered with an error; the line names its code. */
  remote: 3,
  /** The dispatcher could not be reached, or did not answer within `--timeout-ms`. */
  unreachable: 4,
  /** Nothing to act on: `lease` got no item. */
  empty: 5,
  /** `rebuild` found the stream diverging (a gap, a broken hash chain, an unreadable event); nothing was written. */
  diverged: 6,
} as const;

/** One of {@link ExitCodes}. */
export type ExitCode = (typeof ExitCodes)[keyof typeof ExitCodes];

/** The help epilogue that documents {@link ExitCodes}. */
export const exitCodeHelp = `Exit codes:
  0  ok
  2  usage: unknown command or flag, bad value, unreadable or malformed file
  3  remote error: the dispatcher refused the call (stderr: "error: <code>: <message>")
  4  connection failure: the dispatcher (or NATS, for shards) could not be reached or did not answer in time
  5  empty: the verb needed an item and got none (lease with nothing pending)
  6  diverged: rebuild found a gap, a broken hash chain or an unreadable event (stderr names its sequence number)
  1  a bug in the CLI

Environment: OMNIRELAY_URL (--url), OMNIRELAY_CONTROL_URL (--control-url), OMNIRELAY_TOKEN (--token),
OMNIRELAY_NATS_URL and OMNIRELAY_{OWNERS,MEMBERS,PINS}_BUCKET (shards).`;

/** An error that ends the command with a chosen exit code and one message line. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  constructor(exitCode: ExitCode, message: string) {
    super(message);
    this.name = "CliError";
    this.exitCode = exitCode;
  }
}

/** A usage error (exit 2): a bad flag combination, an unreadable file. */
export function usageError(message: string): CliError {
  return new CliError(ExitCodes.usage, message);
}

// Codes that mean "no answer from the remote", as both outbounds report them.
const unreachableCodes: ReadonlySet<string> = new Set([
  ErrorCodes.rpc.transportUnavailable,
  ErrorCodes.rpc.deadlineExceeded,
  ErrorCodes.jetstream.unavailable,
]);

/** Writes the one-line description of `error` to stderr and answers the exit code it maps to. */
export function reportError(error: unknown, stderr: NodeJS.WritableStream = process.stderr): ExitCode {
  if (error instanceof CliError) {
    stderr.write(`error: ${printable(error.message, { newlines: true })}\n`);
    return error.exitCode;
  }
  if (isOmniRelayError(error)) {
    stderr.write(`error: ${printable(error.code)}: ${oneLine(error.message)}\n`);
    return unreachableCodes.has(error.code) ? ExitCodes.unreachable : ExitCodes.remote;
  }
  const message = error instanceof Error ? error.message : String(error);
  stderr.write(`error: internal: ${oneLine(message)}\n`);
  return ExitCodes.internal;
}

function oneLine(text: string): string {
  return printable(text.replace(/\s*\n\s*/g, " ").trim());
}

// C0 controls but newline, DEL, C1 controls and the bidirectional overrides and isolates: what lets a string from the
// server (a peer id, a key, an error message) move the cursor, recolour or clear the screen, set the window title,
// or reorder what a line shows. Tab is escaped too: it would break a table's columns.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNPRINTABLE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A string as it may reach an operator's terminal: every control character (and, with `newlines: false`, newline
 * too) written as a `\uXXXX` escape, so nothing the server sends is run by the terminal or forges a line.
 */
export function printable(text: string, options: { newlines: boolean } = { newlines: false }): string {
  const asEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  const escaped = text.replace(UNPRINTABLE, asEscape);
  return options.newlines ? escaped : escaped.replace(/\n/g, asEscape);
}

/** Writes a command's result: one JSON document with `--json`, the human text (controls escaped) otherwise. */
export function emit(json: boolean, doc: unknown, human: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(doc)}\n` : `${printable(human(), { newlines: true })}\n`);
}

/** Renders rows as a left-aligned text table with a header line. */
export function table(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => printable(String(c))))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => (c ?? "").padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A duration in ms as a short human age: `850ms`, `12s`, `3m04s`, `2h05m`. */
export function age(ms: number | undefined): string {
  if (ms === undefined) return "-";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
