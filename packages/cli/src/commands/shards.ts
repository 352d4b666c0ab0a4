import type { JetStreamShardAdmin, ShardView } from "@omnirelay/replicator-jetstream";
import { type Command, Option } from "commander";
import { globals } from "../context.js";
import { loadJetStream } from "../jetstream.js";
import { CliError, ExitCodes, emit, table } from "../output.js";

/** The options of the `shards` group: where NATS and the placement's buckets are. */
interface ShardsOptions {
  readonly nats: string;
  readonly ownersBucket: string;
  readonly membersBucket: string;
  readonly pinsBucket: string;
}

async function withAdmin<T>(command: Command, fn: (admin: JetStreamShardAdmin) => Promise<T>): Promise<T> {
  const o = command.optsWithGlobals() as ShardsOptions;
  const { JetStreamShardAdmin } = await loadJetStream();
  const admin = await JetStreamShardAdmin.open({
    servers: o.nats.split(",").map((s) => s.trim()),
    ownersBucket: o.ownersBucket,
    membersBucket: o.membersBucket,
    pinsBucket: o.pinsBucket,
  });
  try {
    return await fn(admin);
  } finally {
    await admin.close();
  }
}

function render(shards: readonly ShardView[]): string {
  const rows = shards.map((s) => [
    s.shard,
    s.owner || "-",
    s.url || "-",
    s.epoch,
    s.owner === "" ? "-" : s.ownerLive ? "yes" : "NO",
    s.pinnedTo ?? "-",
    s.placedOn ?? "-",
  ]);
  return table(["SHARD", "OWNER", "URL", "EPOCH", "LIVE", "PINNED", "PLACED"], rows);
}

/** Registers `shards list`, `shards move` and `shards unpin`. */
export function registerShardsCommands(program: Command): void {
  const shards = program
    .command("shards")
    .description("JetStream shard placement: owners, epochs, pins, members (reads the KV buckets over NATS)")
    .addOption(
      new Option("--nats <url>", "NATS server URL(s), comma-separated")
        .env("OMNIRELAY_NATS_URL")
        .default("nats://127.0.0.1:4222"),
    )
    .addOption(
      new Option("--owners-bucket <name>", "ownership bucket")
        .env("OMNIRELAY_OWNERS_BUCKET")
        .default("OMNIRELAY_OWNERS"),
    )
    .addOption(
      new Option("--members-bucket <name>", "membership bucket")
        .env("OMNIRELAY_MEMBERS_BUCKET")
        .default("OMNIRELAY_MEMBERS"),
    )
    .addOption(
      new Option("--pins-bucket <name>", "pins bucket").env("OMNIRELAY_PINS_BUCKET").default("OMNIRELAY_PINS"),
    );

  shards
    .command("list")
    .description("every shard with an ownership key or a pin: owner node, URL, epoch, pin, where placement puts it")
    .action(async (_o, cmd: Command) => {
      const g = globals(cmd);
      const overview = await withAdmin(cmd, (admin) => admin.list());
      emit(g.json, overview, () => {
        const members = overview.members.map((m) => `${m.nodeId} ${m.url}`).join(", ") || "none";
        const head = overview.shards.length ? render(overview.shards) : "no shards recorded";
        return `${head}\n\nmembers: ${members}`;
      });
    });

  shards
    .command("move")
    .description("pin a shard to a node: its owner releases it and the node takes it over from the log")
    .argument("<shard>", "shard name")
    .argument("<node>", "node id of a live member")
    .option("--force", "pin even when the node is not a live member now", false)
    .option("--wait", "wait (up to --timeout-ms) until the node owns the shard", false)
    .action(async function (this: Command) {
      const [shard, node] = this.processedArgs as [string, string];
      const o = this.opts<{ force: boolean; wait: boolean }>();
      const g = globals(this);
      const moved = await withAdmin(this, async (admin) => {
        await admin.move(shard, node, { force: o.force });
        if (!o.wait) return undefined;
        const view = await admin.waitForOwner(shard, node, g.timeoutMs);
        if (view === undefined) {
          throw new CliError(
            ExitCodes.remote,
            `pinned ${shard} to ${node}, but ${node} did not own it within ${g.timeoutMs} ms.`,
          );
        }
        return view;
      });
      emit(g.json, { shard, node, pinned: true, ...(moved ? { owner: moved } : {}) }, () =>
        moved ? `${shard} moved to ${node} (epoch ${moved.epoch})` : `pinned ${shard} to ${node}`,
      );
    });

  shards
    .command("unpin")
    .description("remove a shard's pin: placement goes back to rendezvous hashing")
    .argument("<shard>", "shard name")
    .action(async (shard: string, _o, cmd: Command) => {
      const g = globals(cmd);
      const removed = await withAdmin(cmd, (admin) => admin.unpin(shard));
      emit(g.json, { shard, unpinned: removed }, () => (removed ? `unpinned ${shard}` : `${shard} was not pinned`));
    });

  for (const c of [shards, ...shards.commands]) c.exitOverride();
}
