/**
 * The OmniRelay mesh demo: one program, four roles (dispatcher, diagnostics, seeder, worker), or `--mesh` to start
 * a whole local mesh as separate processes.
 *
 *   pnpm --filter @omnirelay/mesh-demo start -- --roles dispatcher,diagnostics --rpc-url http://127.0.0.1:7420
 *   pnpm --filter @omnirelay/mesh-demo mesh
 */
import { LifecycleGroup } from "@omnirelay/core";
import { destination, pino } from "pino";
import { loadSharedSecret, type MeshAuth, mintToken } from "./auth.js";
import { startSeeder, startWorker } from "./clients.js";
import { exposureNotice, parseConfig, UsageError, usage } from "./config.js";
import { startDiagnosticsServer } from "./diagnostics-server.js";
import { startDispatcherNode } from "./dispatcher-node.js";
import { launchMesh } from "./launcher.js";

async function main(): Promise<void> {
  let config: ReturnType<typeof parseConfig> & MeshAuth;
  try {
    const parsed = parseConfig(process.argv.slice(2), process.env);
    const file = parsed.authSecretFile;
    // Read once, up front: a bad secret file stops every role before it listens or connects.
    config = file === undefined ? parsed : { ...parsed, authSecret: loadSharedSecret(file) };
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    if (error.message) console.error(`error: ${error.message}`);
    console.error(usage);
    process.exit(error.message ? 2 : 0);
  }
  if (config.mintToken !== undefined && config.authSecret !== undefined) {
    process.stdout.write(`${mintToken(config.authSecret, config.mintToken)}\n`);
    return;
  }
  if (config.launch) {
    process.exitCode = await launchMesh(config, process.argv.slice(2));
    return;
  }
  const roles = [...config.roles].join(",");
  const output = destination(1);
  const logger = pino({ level: config.logLevel, base: { roles, pid: process.pid } }, output);
  // The roles of this process, each started as it is added; stopped in reverse (clients before the dispatcher they
  // call), each failure logged without keeping the others open.
  const running = new LifecycleGroup({ logger });
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "Stopping.");
    await running.stop().catch(() => undefined);
    logger.info("Stopped.");
    process.exit(0);
  };
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  if (process.env.MESH_DEMO_SUPERVISED === "1") {
    // Started by the launcher: stop when it goes away (its end of the stdin pipe closes).
    process.stdin.on("error", () => {});
    process.stdin.on("end", () => {
      // The launcher read our output: with it gone every write fails EPIPE, and the logger's flush at exit
      // (sonic-boom's flushSync) retries such a write forever, so the process would never exit. Drop the output, as
      // pino itself does once an EPIPE reaches it.
      const drop = () => {};
      Object.assign(output, { write: () => true, flushSync: drop, end: drop, destroy: drop });
      void shutdown("launcher-exit");
    });
    process.stdin.resume();
  }

  if (config.roles.has("dispatcher") && config.log.kind === "jetstream") {
    // Loaded only in this mode (the container bundle leaves the NATS client out).
    const { startJetStreamNode } = await import("./jetstream-node.js");
    const { startJetStreamDiagnostics } = await import("./jetstream-diagnostics.js");
    const node = await startJetStreamNode(config, logger);
    running.addComponent(node);
    const urls: Record<string, string> = { rpcUrl: node.url };
    if (config.roles.has("diagnostics")) {
      const diagnostics = await startJetStreamDiagnostics(config, node, logger);
      running.addComponent(diagnostics);
      urls.httpUrl = diagnostics.url;
    }
    logger.info(
      { ...urls, nodeId: node.nodeId, log: node.servers, stream: node.names.stream, shards: config.shards },
      "Dispatcher ready.",
    );
  } else if (config.roles.has("dispatcher")) {
    const node = await startDispatcherNode(config, logger);
    running.addComponent(node);
    const urls: Record<string, string> = { rpcUrl: node.url, ...(node.grpcUrl ? { grpcUrl: node.grpcUrl } : {}) };
    if (config.roles.has("diagnostics")) {
      const diagnostics = await startDiagnosticsServer(config, node, logger);
      running.addComponent(diagnostics);
      urls.httpUrl = diagnostics.url;
    }
    logger.info(
      { ...urls, dataDir: config.dataDir, shards: node.shards.map((s) => s.namespace), auth: node.auth },
      "Dispatcher ready.",
    );
    const exposure = exposureNotice({
      rpcUrl: config.rpcUrl,
      ...(config.roles.has("diagnostics") ? { httpUrl: config.httpUrl } : {}),
      grpcUrl: config.grpcUrl,
      authSecretFile: config.authSecretFile,
    });
    if (exposure.level === "warn") logger.warn(exposure.message);
    else logger.info(exposure.message);
  }
  if (config.roles.has("seeder")) running.addComponent(startSeeder(config, logger));
  if (config.roles.has("worker")) running.addComponent(await startWorker(config, logger));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
