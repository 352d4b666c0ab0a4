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
