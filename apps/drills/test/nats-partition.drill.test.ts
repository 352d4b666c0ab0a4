import { describe, expect, it } from "vitest";
import { report } from "./events.js";
import { drillLab } from "./lab.js";
import { type Line, type Proc, sleep, startChaos, startDrill, startNode, tempDir } from "./procs.js";

/** The ownership TTL: an owner that cannot renew stops serving this long after its last successful renewal. */
const TTL_MS = 1_500;
const PARTITION_S = 5;
const NATS_PORT = 4222;

const { lab, dirs } = drillLab();

async function natsServer(ns: string): Promise<Proc> {
  const store = tempDir("nats");
  dirs.push(store.remove);
  const nats = startNode("nats", {
    netns: ns,
    args: [],
    command: ["nats-server", "-a", "0.0.0.0", "-p", String(NATS_PORT), "-js", "-sd", store.path, "-n", "drill"],
  });
  for (let i = 0; !nats.stderr.some((l) => l.includes("Server is ready")); i++) {
    expect(i, `nats-server did not start: ${nats.stderr.join("\n")}`).toBeLessThan(200);
    await sleep(50);
  }
  return nats;
}

const owner = (nodeId: string, spec: { ns: string; nats: string }) =>
  startDrill(nodeId, {
    role: "owner",
    netns: spec.ns,
    config: {
      nodeId,
      servers: [`nats://${spec.nats}:${NATS_PORT}`],
      ttlMs: TTL_MS,
      leaseMs: 1_500,
      prefix: "DRILL",
      shard: "s1",
    },
  });

const rids = (proc: Proc, t: string) => proc.of(t).map((l) => l.rid as string);

describe("drill: partition between a JetStream shard owner and NATS (network namespaces)", () => {
  it("the owner stops serving within its TTL, the other node takes the shard after it, no item is processed twice", async () => {
    const nsNats = lab.namespace();
    const nsA = lab.namespace();
    const nsB = lab.namespace();
    const aToNats = lab.link(nsA, nsNats);
    const bToNats = lab.link(nsB, nsNats);
    await natsServer(nsNats);
    const a = await owner("a", { ns: nsA, nats: aToNats.b.ip });
    expect(await a.waitFor((l) => l.t === "owner")).toMatchObject({ epoch: 1 });
    await a.waitFor((l) => l.t === "done" && l.rid === "a-50", 20_000);
    const b = await owner("b", { ns: nsB, nats: bToNats.b.ip });
    // While a renews, b waits for the shard and does not get it.
    await sleep(TTL_MS + 500);
    expect(b.of("owner")).toEqual([]);

    const chaos = startChaos([
      "--partition",
      "nats",
      "--netns",
      nsA,
      "--dev",
      aToNats.a.dev,
      "--for",
      String(PARTITION_S),
    ]);
    const cut = await chaos.waitFor((l) => l.t === "partitioned");
    // The link goes down between `at` and `downAt`: time limits count from the first, "sent before the cut" from the
    // second (a write that left just before the link went down lands, and its ack comes after the heal).
    const cutAt = cut.at;
    const downAt = cut.downAt as number;
    const lost = await a.waitFor((l) => l.t === "lost", TTL_MS + 2_000);
    // The cut-off owner stops serving on its own: any call is refused with not_owner.
    const refused = await a.ask({ cmd: "probe" }, "probe");
    expect(refused).toMatchObject({ ok: false, code: "resourcelease.not_owner" });
    const takeover = await b.waitFor((l) => l.t === "owner", 3 * TTL_MS + 2_000);
    expect(takeover).toMatchObject({ epoch: 2 });
    await b.waitFor((l) => l.t === "done" && l.rid === "b-20", 20_000);
    expect(await chaos.waitFor((l) => l.t === "passed", PARTITION_S * 1000 + 3_000)).toMatchObject({
      drill: "partition-nats",
    });
    // Healed, the old owner stays fenced: it lost the shard for good.
    expect(await a.ask({ cmd: "probe" }, "probe")).toMatchObject({ ok: false, code: "resourcelease.not_owner" });
    await b.waitFor((l) => l.t === "done" && l.rid === "b-40", 20_000);

    // Within the TTL of the cut (its last renewal was before the cut), and before b took over: never two owners.
    // (500 ms of slack for timers and the pipe on a busy machine; lost before takeover is the split-brain check).
    expect(lost.at - cutAt).toBeLessThanOrEqual(TTL_MS + 500);
    expect(lost.at).toBeLessThan(takeover.at);
    // a reports nothing done after b took over but the late answer to a write it sent before the cut: a resend of
    // an append is answered with its first ack when it had landed (the stream checks the message id first), while a
    // write that had not landed cannot follow b's appends. So every ack or done of a after the takeover answers an
    // enqueue or complete a started before the cut.
    const startOf = { ack: "enqueuing", done: "completing" } as const;
    const late = a.lines.filter((l) => (l.t === "ack" || l.t === "done") && l.at >= takeover.at);
    for (const answer of late) {
      const start = a.lines.find((l) => l.t === startOf[answer.t as "ack" | "done"] && l.rid === answer.rid) as Line;
      expect(start?.at, JSON.stringify(answer)).toBeLessThan(downAt);
    }
    // No item completed twice; every item a acknowledged is completed once (the one whose completion was in flight
    // at the cut may have been stored without a's "done": then nobody completes it again).
    const done = [...rids(a, "done"), ...rids(b, "done")];
    expect(new Set(done).size).toBe(done.length);
    const inFlight = rids(a, "completing").filter((rid) => !rids(a, "done").includes(rid));
    expect(inFlight.length).toBeLessThanOrEqual(1);
    for (const rid of rids(a, "ack")) {
      if (!inFlight.includes(rid)) expect(done, rid).toContain(rid);
    }
    // b's grants are fenced above every grant a made.
    const maxA = Math.max(...a.of("completing").map((l) => l.ft as number));
    expect(Math.min(...b.of("completing").map((l) => l.ft as number))).toBeGreaterThan(maxA);
    report("nats-partition", {
      ttlMs: TTL_MS,
      linkDownAfterCutMs: downAt - cutAt,
      stoppedServingAfterCutMs: lost.at - cutAt,
      takeoverAfterCutMs: takeover.at - cutAt,
      gapBetweenOwnersMs: takeover.at - lost.at,
      itemsAckedByA: rids(a, "ack").length,
    });
  });
});
