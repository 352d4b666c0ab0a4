import type { ResourceLeaseScheduleInfo } from "@omnirelay/core/wire";
import { ScheduleInfoMessage } from "@omnirelay/core/wire";
import type { Command } from "commander";
import { collect, globals, intArg, withClient } from "../context.js";
import { emit, table, usageError } from "../output.js";
import { keyValue } from "./queue.js";

const iso = (ms: number | undefined) => (ms === undefined ? "-" : new Date(ms).toISOString());
const infoJson = (s: ResourceLeaseScheduleInfo) => ScheduleInfoMessage.write(s, "json");

/** Registers cancel and schedule set|rm|ls. */
export function registerScheduleCommands(rl: Command): void {
  rl.command("cancel")
    .description("cancel a pending, delayed or leased item (its holder is refused from then on)")
    .option("--sequence-id <n>", "the item's sequenceId", intArg(1))
    .option("--request-id <id>", "the requestId it was enqueued with")
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      if ((o.sequenceId === undefined) === (o.requestId === undefined)) {
        throw usageError("give --sequence-id or --request-id, not both.");
      }
      const target = o.sequenceId !== undefined ? { sequenceId: o.sequenceId as number } : { requestId: o.requestId };
      const r = await withClient(g, (c) => c.cancel(target));
      emit(g.json, r, () => `cancelled sequenceId ${r.sequenceId} (was ${r.state})`);
    });

  const schedule = rl.command("schedule").description("cron schedules: each slot enqueues the schedule's item once");
  schedule
    .command("set")
    .description("create or replace a schedule")
    .requiredOption("--id <id>", "schedule id: A-Z a-z 0-9 . _ -, 1-128")
    .requiredOption("--cron <expr>", "5 fields (minute first) or 6 (second first), or @hourly etc.")
    .option("--timezone <zone>", "IANA time zone the expression is read in", "UTC")
    .option("--backfill <policy>", "missed slots: skip, latest or all", "skip")
    .option("--backfill-window-ms <ms>", "how far back latest/all reach (default a day)", intArg(1000))
    .requiredOption("--resource-type <type>", "resourceType of the item")
    .requiredOption("--resource-id <id>", "resourceId of the item")
    .requiredOption("--partition-key <key>", "partitionKey of the item")
    .option("--encoding <encoding>", "payloadEncoding", "json")
    .option("--body <text>", "body as text (sent as UTF-8 bytes)")
    .option("--attribute <k=v>", "attribute, repeatable", collect(keyValue))
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const info = await withClient(g, (c) =>
        c.setSchedule({
          id: o.id,
          cron: o.cron,
          timezone: o.timezone,
          backfill: o.backfill,
          ...(o.backfillWindowMs !== undefined ? { backfillWindowMs: o.backfillWindowMs } : {}),
          payload: {
            resourceType: o.resourceType,
            resourceId: o.resourceId,
            partitionKey: o.partitionKey,
            payloadEncoding: o.encoding,
            ...(o.body !== undefined ? { body: Buffer.from(o.body as string, "utf8") } : {}),
            ...(o.attribute ? { attributes: Object.fromEntries(o.attribute as Array<[string, string]>) } : {}),
          },
        }),
      );
      emit(g.json, { schedule: infoJson(info) }, () => `schedule ${info.id} set; next slot ${iso(info.nextSlotAt)}`);
    });

  schedule
    .command("rm")
    .description("remove a schedule (items it already enqueued stay)")
    .argument("<id>", "schedule id")
    .action(async (id: string, _o, cmd: Command) => {
      const g = globals(cmd);
      await withClient(g, (c) => c.removeSchedule(id));
      emit(g.json, { removed: true, id }, () => `schedule ${id} removed`);
    });

  schedule
    .command("ls")
    .description("list the schedules with their last and next slot")
    .action(async (_o, cmd: Command) => {
      const g = globals(cmd);
      const list = await withClient(g, (c) => c.listSchedules());
      emit(g.json, { schedules: list.map(infoJson) }, () => {
        if (list.length === 0) return "no schedules";
        const rows = list.map((s) => [s.id, s.cron, s.timezone, s.backfill, iso(s.lastSlotAt), iso(s.nextSlotAt)]);
        return table(["ID", "CRON", "ZONE", "BACKFILL", "LAST SLOT", "NEXT SLOT"], rows);
      });
    });
}
