import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { globals, intArg, namespaceGiven, withClient } from "../context.js";
import { emit, usageError } from "../output.js";
import { parseDrainFile, toDrainFile } from "../wire.js";

/** Registers drain and restore. */
export function registerDrainCommands(rl: Command): void {
  rl.command("drain")
    .description("stop grants and enqueues on the node and take its pending items (into --out, or stdout)")
    .option("--out <path>", "write the drained items to this file")
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      const out = o.out as string | undefined;
      // Open the file before draining: once drained, the items exist only in our hands (and the replication log).
      const tmp = out ? `${out}.${process.pid}.tmp` : undefined;
      let fd: number | undefined;
      if (tmp) {
        try {
          fd = openSync(tmp, "w");
        } catch (error) {
          throw usageError(`cannot write --out '${out}': ${(error as NodeJS.ErrnoException).code}`);
        }
      }
      try {
        const items = await withClient(g, (c) => c.drain());
        const file = toDrainFile(g.namespace, items, g.url);
        if (fd === undefined || !tmp || !out) {
          process.stdout.write(`${JSON.stringify(file, null, g.json ? undefined : 2)}\n`);
          return;
        }
        writeSync(fd, `${JSON.stringify(file, null, 2)}\n`);
        closeSync(fd);
        fd = undefined;
        renameSync(tmp, out);
        emit(
          g.json,
          { drainedCount: items.length, namespace: g.namespace, out },
          () => `drained ${items.length} item(s) from ${g.namespace} into ${out}`,
        );
      } finally {
        if (fd !== undefined) {
          closeSync(fd);
          rmSync(tmp!, { force: true });
        }
      }
    });

  rl.command("restore")
    .description("replay drained items into a namespace (ends a drain on that node)")
    .requiredOption("--file <path>", "a file written by drain --out")
    .option("--chunk-size <n>", "items per restore call", intArg(1), 256)
    .option("--skip <n>", "skip the first n items of the file (resume a restore that stopped)", intArg(0), 0)
    .option("--renumber", "give the items fresh sequence ids on the target (a node that already has items of its own)")
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      let text: string;
      try {
        text = readFileSync(o.file as string, "utf8");
      } catch (error) {
        throw usageError(`cannot read --file '${o.file}': ${(error as NodeJS.ErrnoException).code}`);
      }
      const parsed = parseDrainFile(text, o.file as string);
      // The file's namespace wins unless --namespace was given explicitly.
      const namespace = namespaceGiven(cmd) ? g.namespace : (parsed.namespace ?? g.namespace);
      const items = parsed.items.slice(o.skip as number);
      const size = o.chunkSize as number;
      const bar =
        !g.json && process.stderr.isTTY && items.length > size
          ? new SingleBar({ stream: process.stderr, format: "restoring [{bar}] {value}/{total} items" })
          : undefined;
      bar?.start(items.length, 0);
      let restored = 0;
      let chunks = 0;
      try {
        await withClient(
          g,
          async (c) => {
            // An empty file still sends one restore: it ends a drain on the node.
            for (let i = 0; i === 0 || i < items.length; i += size) {
              try {
                const chunk = items.slice(i, i + size);
                restored += o.renumber ? (await c.restoreRenumbered(chunk)).restoredCount : await c.restore(chunk);
              } catch (error) {
                if (restored > 0 && error instanceof Error) {
                  error.message += ` (${restored} of ${items.length} items were restored before this chunk; resume with --skip ${(o.skip as number) + i})`;
                }
                throw error;
              }
              chunks++;
              bar?.update(restored);
            }
          },
          namespace,
        );
      } finally {
        bar?.stop();
      }
      emit(
        g.json,
        { restoredCount: restored, namespace, chunks, renumbered: Boolean(o.renumber) },
        () => `restored ${restored} item(s) into ${namespace} (${chunks} call(s))`,
      );
    });
}
