import type { Logger } from "../contracts/health.js";

/** Calls a user callback: a throw or a rejected promise is logged as a warning, never rethrown. Internal. */
export function callSafely(logger: Logger, peerId: string, callback: () => unknown): void {
  try {
    const result = callback();
    if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
      Promise.resolve(result).catch((err: unknown) => {
        logger.warn({ err, peerId }, "peer disconnect callback rejected");
      });
    }
  } catch (err) {
    logger.warn({ err, peerId }, "peer disconnect callback threw");
  }
}
