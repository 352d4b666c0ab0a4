import { afterEach, describe, expect, it } from "vitest";
import { ErrorCodes } from "../../errors/codes.js";
import { closeAll, refusal, session, sleep, stack } from "./session-harness.js";

describe("worker sessions over HTTP: the headers of the upgrade", () => {
  afterEach(closeAll);

  it("refuses a session whose deadline header is malformed, as a unary call with it is refused", async () => {
    const s = await stack({});
    for (const [name, value] of [
      ["rpc-ttl-ms", "abc"],
      ["rpc-ttl-ms", "-5"],
      ["rpc-deadline", "Dec 25 1999"],
    ]) {
      const refused = await refusal(s.url, { "rpc-caller": "w", [name as string]: value as string });
      expect(refused).toEqual({ status: 400, code: ErrorCodes.rpc.requestInvalidHeader });
    }
    // A well-formed one is accepted: a session has no deadline, so one already passed does not end it.
    const w = await session(s.url, { "rpc-caller": "w", "rpc-ttl-ms": "0" });
    w.send({ credit: 1 });
    await sleep(50);
    expect(w.closed()).toBeUndefined();
  });
});
