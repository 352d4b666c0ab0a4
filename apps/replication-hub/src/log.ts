import type { Logger } from "@omnirelay/core";

/**
 * A JSON-lines logger on stderr (warn and error by default): refused calls and conflicts must reach the operator,
 * and the hub's stdout carries only its `listening` line.
 */
export function stderrLogger(level: "debug" | "info" | "warn" | "error" = "warn"): Logger {
  const order = ["debug", "info", "warn", "error"] as const;
  const min = order.indexOf(level);
  const write = (at: (typeof order)[number]) => (obj: object | string, msg?: string) => {
    if (order.indexOf(at) < min) return;
    const fields = typeof obj === "string" ? { msg: obj } : { ...obj, ...(msg === undefined ? {} : { msg }) };
    process.stderr.write(`${JSON.stringify({ level: at, time: new Date().toISOString(), ...fields })}\n`);
  };
  return { debug: write("debug"), info: write("info"), warn: write("warn"), error: write("error") };
}
