/**
 * A drill process: `node dist/main.js dispatcher '<json>'` or `node dist/main.js worker '<json>'`. It reports what it
 * sees as JSON lines on stdout and takes commands as JSON lines on stdin; it stops when stdin closes.
 */
import { type DrillDispatcherConfig, runDispatcher } from "./dispatcher.js";
import { type DrillWorkerConfig, runWorker } from "./worker.js";

const [role, json] = process.argv.slice(2);
const config = JSON.parse(json ?? "{}") as unknown;
const run =
  role === "dispatcher"
    ? runDispatcher(config as DrillDispatcherConfig)
    : role === "worker"
      ? runWorker(config as DrillWorkerConfig)
      : Promise.reject(new Error(`usage: main.js dispatcher|worker '<json config>' (got ${String(role)})`));
run.catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
