import { HistoryResponseMessage, type ResourceLeaseHistoryEntry } from "@omnirelay/core/wire";
import type { Command } from "commander";
import { globals, intArg, withClient } from "../context.js";
import { emit, table, usageError } from "../output.js";

/** What an entry adds beyond its columns: heartbeat runs, refusals, errors, lock-delay and the like. */
function detail(e: ResourceLeaseHistoryEntry): string {
  const parts: string[] = [];
  if (e.eventType === "Heartbeat" && e.heartbeatCount !== undefined) {
    const last = e.lastHeartbeatAt !== undefined ? `, last ${new Date(e.lastHeartbeatAt).toISOString()}` : "";
    parts.push(`${e.heartbeatCount} heartbeat(s)${last}`);
  }
  const m = e.metadata ?? {};
  if (m["refused.verb"]) parts.push(`refused ${m["refused.verb"]} (${m["refused.code"] ?? "?"})`);
  if (m["lease.lock_delay_ms"]) parts.push(`lock-delay ${m["lease.lock_delay_ms"]} ms`);
  if (m["lease.late"]) parts.push(`late (${m["lease.late"]})`);
  if (m["deadletter.reason"]) parts.push(`reason ${m["deadletter.reason"]}`);
  if (m["cancel.state"]) parts.push(`was ${m["cancel.state"]}`);
  if (e.leaseExpiresAt !== undefined) parts.push(`deadline ${new Date(e.leaseExpiresAt).toISOString()}`);
  if (e.error) parts.push(`${e.error.code ? `${e.error.code}: ` : ""}${e.error.message}`);
  return parts.join("; ") || "-";
}

/** Registers history. */
export function registerHistoryCommand(rl: Command): void {
  rl.command("history")
    .description("an item's lease history: enqueue, grants, heartbeats, expiries, refused stale calls, the end")
    .argument("[sequenceId]", "the item's sequenceId", intArg(1))
    .option("--request-id <id>", "name the item by the requestId it was enqueued with instead")
    .action(async (sequenceId: number | undefined, o, cmd: Command) => {
      const g = globals(cmd);
      if ((sequenceId === undefined) === (o.requestId === undefined)) {
        throw usageError("give a sequenceId or --request-id, not both.");
      }
      const target = sequenceId !== undefined ? { sequenceId } : { requestId: o.requestId as string };
      const story = await withClient(g, (c) => c.history(target));
      emit(g.json, HistoryResponseMessage.write(story, "json"), () => {
        const head = `item ${story.sequenceId}${story.requestId !== undefined ? ` (requestId ${story.requestId})` : ""}`;
        const dropped = story.droppedEntries > 0 ? `\n(${story.droppedEntries} older entries dropped)` : "";
        const rows = story.entries.map((e) => [
          e.sequenceNumber,
          new Date(e.at).toISOString(),
          e.eventType,
          e.peerId ?? "-",
          e.attempt ?? "-",
          e.fencingToken ?? "-",
          detail(e),
        ]);
        return `${head}\n${table(["SEQ#", "TIME", "EVENT", "PEER", "ATTEMPT", "TOKEN", "DETAIL"], rows)}${dropped}`;
      });
    });
}
