import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, json, startNode, type TestNode } from "./harness.js";

describe("over gRPC (--transport grpc)", () => {
  let node: TestNode;
  beforeAll(async () => {
    node = await startNode({ grpc: true });
  });
  afterAll(async () => {
    await node.close();
  });

  it("every queue verb works against a GrpcInbound, and remote errors keep their code", async () => {
    const g = ["--transport", "grpc", "--url", `grpc://${node.grpcAddress}`, "--caller", "grpc-worker", "--json"];
    const enq = await cli([
      ...g,
      "resourcelease",
      "enqueue",
      "--resource-type",
      "t",
      "--resource-id",
      "g1",
      "--partition-key",
      "p",
      "--body",
      "hi",
    ]);
    expect(enq.code, enq.stderr).toBe(0);
    expect(json(enq)).toEqual({ sequenceId: 1, stats: { pendingCount: 1, activeLeaseCount: 0 } });
    const lease = json(await cli([...g, "resourcelease", "lease"]));
    expect(lease.items[0]).toMatchObject({ sequenceId: 1, ownerPeerId: "grpc-worker", payload: { body: "aGk=" } });
    const token = JSON.stringify(lease.items[0].ownershipToken);
    expect(json(await cli([...g, "resourcelease", "heartbeat", "--token-json", token])).success).toBe(true);
    expect(json(await cli([...g, "resourcelease", "stats"])).stats).toMatchObject({ activeLeaseCount: 1 });
    expect(json(await cli([...g, "resourcelease", "complete", "--token-json", token]))).toEqual({ success: true });
    const forged = '{"sequenceId":99,"attempt":1,"leaseId":"forged","fencingToken":99}';
    const bad = await cli([...g, "resourcelease", "complete", "--token-json", forged]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/^error: resourcelease\.lease\.unknown_token: /);
    // A bare host:port works as well.
    const bare = await cli(["--transport", "grpc", "--url", node.grpcAddress!, "resourcelease", "stats"]);
    expect(bare.code, bare.stderr).toBe(0);
    expect(json(await cli([...g, "resourcelease", "deadletters"]))).toEqual({ items: [] });
  });
});

describe("exit codes", () => {
  let silent: Server;
  let silentUrl: string;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    // Accepts connections and never answers: a hung dispatcher.
    silent = createServer((s) => {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const addr = silent.address() as { port: number };
    silentUrl = `http://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it("2 for commander usage errors: unknown verb, unknown flag, bad integer, missing required flag", async () => {
    for (const args of [
      ["resourcelease", "explode"],
      ["resourcelease", "stats", "--bogus"],
      ["resourcelease", "lease", "--max-items", "zero"],
      ["resourcelease", "enqueue", "--resource-type", "t"],
      ["--transport", "carrier-pigeon", "resourcelease", "stats"],
      [
        "resourcelease",
        "enqueue",
        "--resource-type",
        "t",
        "--resource-id",
        "i",
        "--partition-key",
        "p",
        "--body",
        "x",
        "--body-file",
        "y",
      ],
    ]) {
      const run = await cli(args);
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr, args.join(" ")).toMatch(/^error: /);
    }
  });

  it("2 for bad flag files and combinations (TLS files, token forms)", async () => {
    const tls = await cli(["--url", "https://127.0.0.1:1", "--ca", "/nonexistent/ca.pem", "resourcelease", "stats"]);
    expect(tls.code).toBe(2);
    expect(tls.stderr).toMatch(/^error: cannot read --ca file '\/nonexistent\/ca.pem': ENOENT/);
    const pair = await cli(["--cert", "/etc/hostname", "resourcelease", "stats"]);
    expect(pair.code).toBe(2);
    expect(pair.stderr).toMatch(/--cert and --key go together/);
    const tok = await cli(["resourcelease", "complete", "--token-json", "{nope"]);
    expect(tok.code).toBe(2);
    const url = await cli(["--url", "ftp://x", "resourcelease", "stats"]);
    expect(url.code).toBe(2);
  });

  it("4 when the dispatcher cannot be reached or does not answer within --timeout-ms", async () => {
    const refused = await cli(["--url", "http://127.0.0.1:1", "resourcelease", "stats"]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/^error: omnirelay\.transport\.unavailable: .*ECONNREFUSED/);
    const grpc = await cli([
      "--transport",
      "grpc",
      "--url",
      "127.0.0.1:1",
      "--timeout-ms",
      "2000",
      "resourcelease",
      "stats",
    ]);
    expect(grpc.code).toBe(4);
    const started = Date.now();
    const hung = await cli(["--url", silentUrl, "--timeout-ms", "300", "resourcelease", "stats"]);
    expect(hung.code).toBe(4);
    expect(hung.stderr).toMatch(/^error: omnirelay\.deadline_exceeded: /);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it("0 for --help and --version, with the exit codes in the help epilogue", async () => {
    const help = await cli(["--help"]);
    expect(help.code).toBe(0);
    for (const line of ["0  ok", "2  usage", "3  remote error", "4  connection failure", "5  empty"]) {
      expect(help.stdout).toContain(line);
    }
    const version = await cli(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
