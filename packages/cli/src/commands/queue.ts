import { readFileSync } from "node:fs";
import type { ResourceLeaseOwnershipToken } from "@omnirelay/core";
import { type Command, InvalidArgumentError, Option } from "commander";
import { collect, globals, intArg, withClient } from "../context.js";
import { CliError, ExitCodes, emit, table, usageError } from "../output.js";
import { grantToJson, tokenFromFlags } from "../wire.js";

/** Parses a `key=value` flag. */
export function keyValue(value: string): [string, string] {
  const at = value.indexOf("=");
  if (at < 1) throw new InvalidArgumentError("expected key=value.");
  return [value.slice(0, at), value.slice(at + 1)];
}

function addTokenFlags(command: Command): Command {
  return command
    .option("--token-json <json>", "the ownershipToken as JSON (as printed by lease)")
    .option("--sequence-id <n>", "token sequenceId", intArg(1))
    .option("--attempt <n>", "token attempt", intArg(1))
    .option("--lease-id <id>", "token leaseId")
    .option("--fencing-token <n>", "token fencingToken", intArg(1));
}

/** commander parser of a time: ISO-8601 with a zone, or ms since the epoch (the server checks the range). */
function timeArg(value: string): number {
  const v = value.trim();
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(v);
  const n = /^\d+$/.test(v) ? Number(v) : iso ? Date.parse(v) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError("expected ISO-8601 with a zone, or ms since the epoch.");
  return n;
}

/** commander parser of a signed integer (the server checks the range). */
function signedIntArg(value: string): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError("expected an integer.");
  return n;
}

const tokenLine = (t: ResourceLeaseOwnershipToken) => JSON.stringify(t);

/** Parses a `key=value` flag. */
/** Registers enqueue, lease, heartbeat, complete and fail. */
export function registerQueueCommands(rl: Command): void {
  rl.command("enqueue")
    .description("enqueue one work item")
    .requiredOption("--resource-type <type>", "resourceType, e.g. table")
    .requiredOption("--resource-id <id>", "resourceId, e.g. sales.orders")
    .requiredOption("--partition-key <key>", "partitionKey")
    .option("--encoding <encoding>", "payloadEncoding", "json")
    .addOption(new Option("--body <text>", "body as text (sent as UTF-8 bytes)").conflicts("bodyFile"))
    .option("--body-file <path>", "body read from a file (bytes as they are)")
    .option("--attribute <k=v>", "attribute, repeatable", collect(keyValue))
    .option("--request-id <id>", "idempotency key: a retried enqueue returns the original item")
    .addOption(
      new Option("--not-before <time>", "not leased before this time (ISO-8601 with a zone, or ms since the epoch)")
        .argParser(timeArg)
        .conflicts("delayMs"),
    )
    .option("--delay-ms <ms>", "not leased before this many ms from the server's clock", intArg(0))
    .option("--priority <n>", "priority, a 32-bit signed integer: higher is leased first (default 0)", signedIntArg)
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      let body: Uint8Array | undefined;
      if (o.body !== undefined) body = Buffer.from(o.body as string, "utf8");
      if (o.bodyFile !== undefined) {
        try {
          body = readFileSync(o.bodyFile as string);
        } catch (error) {
          throw usageError(`cannot read --body-file '${o.bodyFile}': ${(error as NodeJS.ErrnoException).code}`);
        }
      }
      const attributes = o.attribute ? Object.fromEntries(o.attribute as Array<[string, string]>) : undefined;
      const r = await withClient(g, (c) =>
        c.enqueue({
          resourceType: o.resourceType,
          resourceId: o.resourceId,
          partitionKey: o.partitionKey,
          payloadEncoding: o.encoding,
          ...(body ? { body } : {}),
          ...(attributes ? { attributes } : {}),
          ...(o.requestId ? { requestId: o.requestId } : {}),
          ...(o.notBefore !== undefined ? { notBefore: o.notBefore as number } : {}),
          ...(o.delayMs !== undefined ? { delayMs: o.delayMs as number } : {}),
          ...(o.priority !== undefined ? { priority: o.priority as number } : {}),
        }),
      );
      const doc = { sequenceId: r.sequenceId, ...(r.duplicate ? { duplicate: true } : {}), stats: r.stats };
      emit(
        g.json,
        doc,
        () =>
          `${r.duplicate ? "duplicate of" : "enqueued"} sequenceId ${r.sequenceId} ` +
          `(pending ${r.stats.pendingCount}, active ${r.stats.activeLeaseCount})`,
      );
    });

  rl.command("lease")
    .description("lease items; prints their ownership tokens (exit 5 when nothing was leased)")
    .option("--peer-id <id>", "peer id that owns the lease (default: --caller)")
    .option("--wait-ms <ms>", "wait this long when nothing is pending", intArg(0), 0)
    .option("--max-items <n>", "lease up to n items", intArg(1), 1)
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const grants = await withClient(g, (c) =>
        c.lease({ waitMs: o.waitMs, maxItems: o.maxItems, ...(o.peerId ? { peerId: o.peerId } : {}) }),
      );
      emit(g.json, { items: grants.map(grantToJson) }, () => {
        if (grants.length === 0) return "nothing to lease";
        const rows = grants.map((x) => [
          x.sequenceId,
          x.attempt,
          `${x.payload.resourceType}/${x.payload.resourceId}`,
          x.ownerPeerId ?? "-",
          new Date(x.leaseExpiresAt).toISOString(),
        ]);
        const head = table(["SEQ", "ATTEMPT", "RESOURCE", "PEER", "EXPIRES"], rows);
        return `${head}\n\n${grants.map((x) => `--token-json '${tokenLine(x.ownershipToken)}'`).join("\n")}`;
      });
      if (grants.length === 0) throw new CliError(ExitCodes.empty, "nothing to lease");
    });

  addTokenFlags(rl.command("heartbeat").description("extend a lease")).action(async (o, cmd: Command) => {
    const g = globals(cmd);
    const token = tokenFromFlags(o);
    const r = await withClient(g, (c) => c.heartbeat(token));
    const leaseExpiresAt = new Date(r.leaseExpiresAt).toISOString();
    emit(
      g.json,
      { success: true, leaseExpiresAt, remainingMs: r.remainingMs },
      () => `lease ${token.sequenceId} extended until ${leaseExpiresAt} (${r.remainingMs} ms)`,
    );
  });

  addTokenFlags(rl.command("complete").description("complete a lease")).action(async (o, cmd: Command) => {
    const g = globals(cmd);
    const token = tokenFromFlags(o);
    await withClient(g, (c) => c.complete(token));
    emit(g.json, { success: true }, () => `completed ${token.sequenceId}`);
  });

  addTokenFlags(rl.command("fail").description("fail a lease (requeued by default)"))
    .option("--reason <text>", "failure reason")
    .option("--error-code <code>", "failure code")
    .option("--no-requeue", "dead-letter instead of requeueing")
    .option("--delay-ms <ms>", "requeue after this delay", intArg(0))
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const token = tokenFromFlags(o);
      const outcome = await withClient(g, (c) =>
        c.fail(token, {
          requeue: o.requeue !== false,
          ...(o.reason ? { reason: o.reason } : {}),
          ...(o.errorCode ? { errorCode: o.errorCode } : {}),
          ...(o.delayMs !== undefined ? { delayMs: o.delayMs } : {}),
        }),
      );
      emit(g.json, { success: true, outcome }, () => `failed ${token.sequenceId}: ${outcome}`);
    });
}
