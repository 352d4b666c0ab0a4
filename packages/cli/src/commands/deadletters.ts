import type { Command } from "commander";
import { collect, globals, intArg, withClient } from "../context.js";
import { emit, table, usageError } from "../output.js";
import { deadLetterToJson } from "../wire.js";

/** Registers deadletters and redrive. */
export function registerDeadLetterCommands(rl: Command): void {
  rl.command("deadletters")
    .description("list dead-lettered items, oldest first")
    .option("--limit <n>", "at most n items (server default 100)", intArg(1))
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const items = await withClient(g, (c) => c.deadLetters(o.limit !== undefined ? { limit: o.limit } : {}));
      emit(g.json, { items: items.map(deadLetterToJson) }, () => {
        if (items.length === 0) return "no dead-lettered items";
        const rows = items.map((x) => [
          x.sequenceId,
          x.attempt,
          `${x.payload.resourceType}/${x.payload.resourceId}`,
          x.reason,
          new Date(x.deadLetteredAt).toISOString(),
          x.lastError ? `${x.lastError.code ? `${x.lastError.code}: ` : ""}${x.lastError.message}` : "-",
        ]);
        return table(["SEQ", "ATTEMPT", "RESOURCE", "REASON", "DEAD-LETTERED", "LAST ERROR"], rows);
      });
    });

  rl.command("redrive")
    .description("move dead-lettered items back to pending")
    .option("--sequence-id <n>", "an item to redrive, repeatable", collect(intArg(1)))
    .option("--all", "redrive every dead-lettered item")
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const ids = o.sequenceId as number[] | undefined;
      if (!ids === !o.all) throw usageError("give --sequence-id (repeatable) or --all, not both.");
      const count = await withClient(g, (c) => c.redrive(ids ? { sequenceIds: ids } : {}));
      emit(g.json, { redrivenCount: count }, () => `redrove ${count} item(s)`);
    });
}
