/**
 * A drill process: `node dist/main.js dispatcher|worker|owner '<json config>'`. It reports what it sees as JSON lines
 * on stdout and takes commands as JSON lines on stdin; it stops when stdin closes.
 */
import { type DrillDispatcherConfig, runDispatcher } from "./dispatcher.js";
import { type DrillOwnerConfig, runOwner } from "./owner.js";
import { type DrillWorkerConfig, runWorker } from "./worker.js";

const roles: Record<string, (config: never) => Promise<void>> = {
  dispatcher: (config: DrillDispatcherConfig) => runDispatcher(config),
  worker: (config: DrillWorkerConfig) => runWorker(config),
  owner: (config: DrillOwnerConfig) => runOwner(config),
};

const [role, json] = process.argv.slice(2);
const run = role === undefined ? undefined : roles[role];
if (run === undefined) {
  console.error(`usage: main.js ${Object.keys(roles).join("|")} '<json config>' (got ${String(role)})`);
  process.exit(2);
}
run(JSON.parse(json ?? "{}") as never).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
