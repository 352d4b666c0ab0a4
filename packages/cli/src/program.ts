import { Command, Option } from "commander";
import { registerDeadLetterCommands } from "./commands/deadletters.js";
import { registerDrainCommands } from "./commands/drain.js";
import { registerHistoryCommand } from "./commands/history.js";
import { registerPeersCommand } from "./commands/peers.js";
import { registerQueueCommands } from "./commands/queue.js";
import { registerRebuildCommand } from "./commands/rebuild.js";
import { registerScheduleCommands } from "./commands/schedule.js";
import { registerShardsCommands } from "./commands/shards.js";
import { registerStatsCommand } from "./commands/stats.js";
import { intArg } from "./context.js";
import { exitCodeHelp } from "./output.js";

/** Builds the `omnirelay` command tree (commander); `main.ts` runs it. */
export function createProgram(version: string): Command {
  const program = new Command("omnirelay")
    .description(
      "Drive and inspect OmniRelay resourcelease dispatchers over HTTP or gRPC, and JetStream shard placement.",
    )
    .version(version)
    .addOption(
      new Option("--url <url>", "dispatcher URL; for grpc host:port or grpc://host:port")
        .env("OMNIRELAY_URL")
        .default("http://127.0.0.1:7420"),
    )
    .addOption(new Option("--namespace <ns>", "queue namespace, e.g. resourcelease.billing").default("resourcelease"))
    .addOption(new Option("--transport <kind>", "transport").choices(["http", "grpc"]).default("http"))
    .option("--ca <path>", "CA certificate (PEM) to trust")
    .option("--cert <path>", "client certificate (PEM) for mutual TLS")
    .option("--key <path>", "client private key (PEM) for mutual TLS")
    .option("--caller <name>", "sent as Rpc-Caller; default peer id of leases")
    .addOption(new Option("--token <jwt>", "JWT sent as Authorization: Bearer").env("OMNIRELAY_TOKEN"))
    .option("--timeout-ms <ms>", "deadline of each call", intArg(1), 30_000)
    .addOption(
      new Option("--control-url <url>", "diagnostics control plane URL (default: --url over http)").env(
        "OMNIRELAY_CONTROL_URL",
      ),
    )
    .option("--json", "machine output: one JSON document on stdout", false)
    .addHelpText("after", `\n${exitCodeHelp}`)
    .exitOverride()
    .showHelpAfterError(false);

  const rl = program
    .command("resourcelease")
    .description("the resourcelease::* procedures and the control plane's queue and peer views")
    .addHelpText("after", `\n${exitCodeHelp}`);
  registerQueueCommands(rl);
  registerDrainCommands(rl);
  registerDeadLetterCommands(rl);
  registerScheduleCommands(rl);
  registerHistoryCommand(rl);
  registerStatsCommand(rl);
  registerPeersCommand(rl);
  registerRebuildCommand(rl);
  // Every sub-command reports usage errors through the same exit path.
  for (const c of [rl, ...rl.commands]) c.exitOverride();
  registerShardsCommands(program);
  return program;
}
