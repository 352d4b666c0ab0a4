import { describe, expect, it } from "vitest";
import { grpcAddress, parseConfig, UsageError } from "./config.js";

describe("parseConfig", () => {
  it("reads flags after a `--` that pnpm passes through, also after the script's own flags", () => {
    // `npm run demo -- --http-url …` runs `node dist/main.js --mesh -- --http-url …`.
    const config = parseConfig(["--mesh", "--", "--http-url", "http://127.0.0.1:25158", "--data-dir", "/tmp/x"], {});
    expect(config).toMatchObject({ launch: true, httpUrl: "http://127.0.0.1:25158", dataDir: "/tmp/x" });
  });

  it("takes --transport grpc only with --grpc-url, and anything else but http and grpc not at all", () => {
    const worker = ["--roles", "worker", "--transport", "grpc"];
    expect(() => parseConfig(worker, {})).toThrow(
      new UsageError("--transport grpc needs --grpc-url (where the dispatcher serves gRPC)"),
    );
    expect(parseConfig([...worker, "--grpc-url", "http://127.0.0.1:7421"], {})).toMatchObject({
      transport: "grpc",
      grpcUrl: "http://127.0.0.1:7421",
    });
    expect(() => parseConfig(["--roles", "worker", "--transport", "quic"], {})).toThrow(
      "--transport must be one of http, grpc",
    );
    expect(parseConfig(["--roles", "worker"], {})).toMatchObject({ transport: "http" });
    expect(parseConfig(["--roles", "worker"], {}).grpcUrl).toBeUndefined();
    expect(grpcAddress("http://127.0.0.1:7421")).toBe("127.0.0.1:7421");
  });
});

describe("parseConfig: the JetStream mode", () => {
  it("takes --netns (or MESH_DEMO_NETNS=1) only with --mesh on the SQLite log", () => {
    expect(parseConfig(["--mesh"], {}).netns).toBe(false);
    expect(parseConfig(["--mesh", "--netns"], {}).netns).toBe(true);
    expect(parseConfig(["--mesh"], { MESH_DEMO_NETNS: "1" }).netns).toBe(true);
    expect(() => parseConfig(["--roles", "worker", "--netns"], {})).toThrow(/--netns goes with --mesh/);
    expect(() => parseConfig(["--mesh", "--netns", "--log", "jetstream://127.0.0.1:4222"], {})).toThrow(
      /on the SQLite log/,
    );
  });

  it("keeps the SQLite log and one node by default", () => {
    expect(parseConfig(["--mesh"], {})).toMatchObject({ log: { kind: "sqlite" }, nodes: 1 });
    expect(() => parseConfig(["--mesh", "--nodes", "3"], {})).toThrow(/--nodes above 1 needs --log jetstream/);
  });

  it("reads --log jetstream:// as NATS servers, three nodes by default, and the mesh's names and TTL", () => {
    const config = parseConfig(
      ["--mesh", "--log", "jetstream://127.0.0.1:4222,10.0.0.2:4222", "--ownership-ttl-ms", "1500"],
      { MESH_DEMO_JETSTREAM_PREFIX: "DEMO_A" },
    );
    expect(config).toMatchObject({
      log: { kind: "jetstream", servers: ["nats://127.0.0.1:4222", "nats://10.0.0.2:4222"] },
      nodes: 3,
      ownershipTtlMs: 1500,
      jetstreamPrefix: "DEMO_A",
    });
    expect(parseConfig(["--roles", "dispatcher", "--rpc-url", "http://127.0.0.1:7431"], {}).nodeId).toBe("node-7431");
    expect(
      parseConfig(["--roles", "seeder", "--endpoints", "http://127.0.0.1:1/x, http://127.0.0.1:2"], {}).endpoints,
    ).toEqual(["http://127.0.0.1:1", "http://127.0.0.1:2"]);
  });

  it("refuses what the JetStream mode cannot use, with the flag named", () => {
    const bad: [string[], RegExp][] = [
      [["--log", "postgres://x"], /--log must be sqlite or jetstream/],
      [["--log", "jetstream://"], /--log jetstream:\/\/ needs host:port/],
      [["--log", "jetstream://127.0.0.1"], /needs host:port/],
      [["--log", "jetstream://127.0.0.1:4222", "--nodes", "0"], /--nodes must be an integer 1-9/],
      [["--ownership-ttl-ms", "100"], /--ownership-ttl-ms must be an integer >= 300/],
      [["--jetstream-prefix", "a.b"], /--jetstream-prefix must be/],
      [["--node-id", "node 1"], /--node-id must be/],
      [["--endpoints", "grpc://127.0.0.1:1"], /--endpoints must list http URLs/],
      [
        [
          "--roles",
          "worker",
          "--log",
          "jetstream://127.0.0.1:4222",
          "--transport",
          "grpc",
          "--grpc-url",
          "http://127.0.0.1:1",
        ],
        /--transport grpc is not available with --log jetstream/,
      ],
    ];
    for (const [args, message] of bad) {
      const argv = args[0] === "--roles" ? args : ["--mesh", ...args];
      expect(() => parseConfig(argv, {})).toThrow(message);
    }
  });
});
