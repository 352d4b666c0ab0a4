import type { Command } from "commander";
import { globals } from "../context.js";
import { CliError, ExitCodes, emit } from "../output.js";
import { type RebuildReport, runRebuild } from "../rebuild/run.js";

function human(r: RebuildReport): string {
  const range = r.firstSequence !== undefined ? `${r.firstSequence}..${r.lastSequence}` : "none";
  const lines = [
    `read ${r.events} event(s) (${range})${r.snapshotSequence !== undefined ? ` after a snapshot at ${r.snapshotSequence}` : ""} from ${r.source}`,
  ];
  if (r.verified) {
    lines.push(
      r.chainStartsAt !== undefined
        ? `chain verified from event ${r.chainStartsAt}; last hash ${r.lastHash ?? "-"}`
        : "no event carries a hash (a log older than the chain): sequence numbers checked only",
    );
  }
  if (r.state) {
    const s = r.state;
    lines.push(`state: ${s.pending} pending, ${s.delayed} delayed, ${s.active} active, ${s.deadLetters} dead-lettered`);
  }
  for (const w of r.written) lines.push(`wrote ${w}`);
  return lines.join("\n");
}

/** Registers rebuild: a shard's state from any copy of its stream, verified on the way. */
export function registerRebuildCommand(rl: Command): void {
  rl.command("rebuild")
    .description(
      "rebuild a shard's state from a copy of its event stream, verify it, write a fresh log or a drain file",
    )
    .requiredOption(
      "--from <source>",
      "sqlite:<path>, hub:<host:port>/<node>[/<shard>], file:<dir>[#prefix], s3://bucket/prefix, gs://bucket/prefix, azure://container/prefix",
    )
    .option("--node <id>", "hub: the node id the stream was published as (instead of in the source)")
    .option("--shard <id>", "hub: the shard (empty for an unsharded node)")
    .option("--verify", "check sequence gaps and the hash chain; report the first divergence", false)
    .option(
      "--out <target>",
      "sqlite:<new path> (a fresh log a node starts from) or drain:<new file> (for restore); repeatable",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const report = await runRebuild({
        from: o.from as string,
        verify: Boolean(o.verify),
        out: o.out as string[],
        namespace: g.namespace,
        ...(o.node !== undefined ? { node: o.node as string } : {}),
        ...(o.shard !== undefined ? { shard: o.shard as string } : {}),
      });
      const d = report.divergence;
      if (d) {
        if (g.json) process.stdout.write(`${JSON.stringify(report)}\n`);
        throw new CliError(
          ExitCodes.diverged,
          `${d.code}: the stream diverges at event ${d.sequenceNumber}: ${d.reason}`,
        );
      }
      emit(g.json, report, () => human(report));
    });
}
