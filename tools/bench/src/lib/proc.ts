import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A forked child process of the harness, driven by request/response IPC messages. */
export interface Child {
  readonly proc: ChildProcess;
  /** The child's `ready` message. */
  readonly ready: Record<string, unknown>;
  /** Sends a command and resolves with the child's result. */
  call<T = Record<string, unknown>>(cmd: string, args?: Record<string, unknown>): Promise<T>;
  /** Asks the child to stop, then kills it if it does not exit within 10 s. */
  stop(): Promise<void>;
}

interface Reply {
  readonly id: number;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

/**
 * V8 flags of every Node process the harness starts, whichever system it belongs to: a 32 MiB young generation, as
 * docs/guides/operations.md recommends for a dispatcher's process (a restart allocates a million long-lived items, and
 * with V8's 16 MiB default every scavenge copies them).
 */
export const NODE_FLAGS: readonly string[] = ["--max-semi-space-size=32"];

/**
 * Forks `dist/workers/<name>.js` with its config in argv[2] and waits for its `ready` message. Its Node flags are
 * {@link NODE_FLAGS} and then `execArgv`.
 */
export async function startChild(
  name: string,
  config: Record<string, unknown>,
  options: { execArgv?: string[] } = {},
): Promise<Child> {
  const file = fileURLToPath(new URL(`./workers/${name}.js`, import.meta.url));
  const proc = fork(file, [JSON.stringify(config)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: [...NODE_FLAGS, ...(options.execArgv ?? [])],
    // graphile-worker formats a log line per job unless NO_LOG_SUCCESS is set, even with a silent logger.
    env: { ...process.env, NO_LOG_SUCCESS: "1" },
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    proc.once("exit", (code) => {
      exited = true;
      for (const p of pending.values()) p.reject(new Error(`${name} exited (code ${code})`));
      pending.clear();
      resolve();
    });
  });
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const onExit = () => reject(new Error(`${name} exited before it was ready`));
    proc.once("exit", onExit);
    proc.on("message", (message: unknown) => {
      const m = message as { type?: string } & Reply;
      if (m.type === "ready") {
        proc.off("exit", onExit);
        resolve(m as unknown as Record<string, unknown>);
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
  });
  return {
    proc,
    ready,
    call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
      if (exited) return Promise.reject(new Error(`${name} has exited`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        proc.send({ id, cmd, args });
      });
    },
    async stop() {
      if (exited) return;
      proc.send({ id: 0, cmd: "exit", args: {} });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
