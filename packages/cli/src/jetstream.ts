import { ErrorCodes } from "@omnirelay/core";
import { usageError } from "./output.js";

/**
 * The JetStream package is an optional peer: loaded only by `omnirelay shards`, so the rest of the CLI needs no NATS
 * client. The name sits in a variable so the bundler leaves the import to run time.
 */
const jetstreamPackage = "@omnirelay/replicator-jetstream";

/** The module `omnirelay shards` uses. */
export type JetStreamPackage = typeof import("@omnirelay/replicator-jetstream");

/**
 * Loads `@omnirelay/replicator-jetstream`.
 * @throws CliError (exit 2) `omnirelay.cli.jetstream_not_installed` with the `npm install` line when it is missing.
 */
export async function loadJetStream(): Promise<JetStreamPackage> {
  try {
    return (await import(jetstreamPackage)) as JetStreamPackage;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const missing = e?.code === "ERR_MODULE_NOT_FOUND" && e.message.includes(`'${jetstreamPackage}'`);
    if (!missing) throw error;
    throw usageError(
      `${ErrorCodes.rpc.cliJetstreamNotInstalled}: omnirelay shards needs the package ${jetstreamPackage}, which is ` +
        `not installed. Install it next to @omnirelay/cli: npm install ${jetstreamPackage} (with -g if the CLI is global).`,
    );
  }
}
