import { createInterface } from "node:readline";

/** One JSON line on stdout: how a drill process reports what it sees to the test that runs it. */
export function emit(line: Record<string, unknown> & { t: string }): void {
  process.stdout.write(`${JSON.stringify({ ...line, at: line.at ?? Date.now() })}\n`);
}

/** A command the test sends on stdin (one JSON object per line). */
export type Command = Record<string, unknown> & { cmd: string };

/**
 * Runs `handle` for each JSON line on stdin, one at a time, in order; a failing command is reported as an `error`
 * line rather than ending the process. Resolves when stdin closes (the test went away).
 */
export function commands(handle: (command: Command) => Promise<void> | void): Promise<void> {
  return new Promise((resolve) => {
    let chain = Promise.resolve();
    const rl = createInterface({ input: process.stdin });
    rl.on("line", (text) => {
      if (text.trim() === "") return;
      chain = chain.then(async () => {
        let command: Command | undefined;
        try {
          command = JSON.parse(text) as Command;
          await handle(command);
        } catch (error) {
          emit({ t: "error", cmd: command?.cmd ?? text, message: (error as Error).message });
        }
      });
    });
    rl.on("close", () => void chain.then(resolve));
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
