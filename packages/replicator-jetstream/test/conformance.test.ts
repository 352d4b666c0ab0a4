import { describeEventLogConformance, type EventLogConformanceFixture } from "@omnirelay/core/testing";
import { afterAll, describe, it } from "vitest";
import { JetStreamResourceLeaseEventLog } from "../src/index.js";
import { testStream } from "./helpers.js";

const js = testStream();
afterAll(() => js.remove());

interface Fixture extends EventLogConformanceFixture {
  readonly log: JetStreamResourceLeaseEventLog;
  readonly shard: string;
}

const open = async (shard?: string): Promise<Fixture> => {
  const options = js.options(shard);
  const log = await JetStreamResourceLeaseEventLog.open(options);
  return { log, shard: options.shard, close: () => log.close() };
};

describeEventLogConformance<Fixture>(
  "JetStream log (R1, file storage, machine's nats-server)",
  { create: () => open(), reopen: (closed) => open(closed.shard) },
  { test: { describe, it }, gaps: "refused" },
);
