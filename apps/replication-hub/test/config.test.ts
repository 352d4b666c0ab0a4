import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseHubConfig, usage } from "../src/config.js";
import { startHubProcess } from "./hub-process.js";

const dir = mkdtempSync(join(tmpdir(), "omnirelay-hub-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const base = ["--data-dir", dir];

describe("omnirelay-hub command line: identity and grants", () => {
  it("turns repeated grant flags into the hub's tables (a name given twice gets the union)", () => {
    const config = parseHubConfig(
      [
        ...base,
        "--allow-unauthenticated",
        "--grant-publish",
        "relay=*",
        "--grant-subscribe",
        "reporting-batch-job=billing-1,billing-2",
        "--grant-subscribe",
        "reporting-batch-job=billing-3",
        "--grant-subscribe",
        "spiffe://omnirelay.internal/audit=*",
        "--no-self-grant",
      ],
      {},
    );
    expect(config.auth).toEqual({
      allowUnauthenticated: true,
      selfGrant: false,
      publishers: { relay: ["*"] },
      subscribers: {
        "reporting-batch-job": ["billing-1", "billing-2", "billing-3"],
        "spiffe://omnirelay.internal/audit": ["*"],
      },
    });
  });

  it("refuses malformed grants and a hub that could not tell callers apart", () => {
    for (const bad of ["billing-1", "=billing-1", "name=", "name= , "]) {
      expect(() => parseHubConfig([...base, "--allow-unauthenticated", "--grant-publish", bad], {}), bad).toThrow(
        /--grant-publish takes <name>=<node>/,
      );
    }
    expect(() => parseHubConfig(base, {})).toThrow(/no way to authenticate callers/);
    expect(parseHubConfig(base, { OMNIRELAY_HUB_ALLOW_UNAUTHENTICATED: "1" }).auth.allowUnauthenticated).toBe(true);
    expect(() => parseHubConfig([...base, "--require-client-cert"], {})).toThrow(/needs --tls-cert/);
  });

  it("pins JWT algorithms, reads the secret without its trailing newline, and wants one key", () => {
    const secret = file("secret", "s3cret\r\n");
    const tls = ["--tls-cert", file("c", "x"), "--tls-key", file("k", "y")];
    expect(() => parseHubConfig([...base, ...tls, "--jwt-secret-file", secret], {})).toThrow(/--jwt-algorithms/);
    const config = parseHubConfig(
      [...base, ...tls, "--jwt-secret-file", secret, "--jwt-algorithms", "HS256", "--jwt-audience", "hub"],
      {},
    );
    const jwt = config.auth.jwt!;
    expect(jwt).toMatchObject({ algorithms: ["HS256"], audience: "hub" });
    expect((jwt.key as { export(): Buffer }).export().toString()).toBe("s3cret");
    expect(() =>
      parseHubConfig(
        [...base, ...tls, "--jwt-secret-file", secret, "--jwt-public-key", secret, "--jwt-algorithms", "HS256"],
        {},
      ),
    ).toThrow(/one of/);
    expect(() => parseHubConfig([...base, "--allow-unauthenticated", "--jwt-issuer", "x"], {})).toThrow(
      /--jwt-issuer needs/,
    );
    expect(() =>
      parseHubConfig([...base, ...tls, "--jwt-secret-file", file("empty", "\n"), "--jwt-algorithms", "HS256"], {}),
    ).toThrow(/empty/);
  });
});

describe("omnirelay-hub command line: ports", () => {
  const open = [...base, "--allow-unauthenticated"];

  it("turns HTTP off with `--http-port -1` as --help documents it, and with `--http-port=-1`", () => {
    expect(usage).toMatch(/--http-port <n>.*-1 = off/);
    expect(parseHubConfig([...open, "--http-port", "-1"], {}).httpPort).toBe(-1);
    expect(parseHubConfig([...open, "--http-port=-1"], {}).httpPort).toBe(-1);
    expect(parseHubConfig([...open, "--http-port", "0", "--port", "0"], {})).toMatchObject({ port: 0, httpPort: 0 });
    expect(parseHubConfig(open, {})).toMatchObject({ port: 7950, httpPort: 7951 });
    // The value after --http-port is taken as its value only: flags after it still count.
    const config = parseHubConfig([...base, "--http-port", "-1", "--no-self-grant", "--allow-unauthenticated"], {});
    expect(config).toMatchObject({ httpPort: -1, auth: { allowUnauthenticated: true, selfGrant: false } });
  });

  it("refuses port values that are not a port (or -1 for --http-port) instead of quietly turning HTTP off", () => {
    for (const bad of ["-2", "abc", "", "65536", "1.5", "0x10", "-01x"]) {
      expect(() => parseHubConfig([...open, `--http-port=${bad}`], {}), bad).toThrow(/--http-port takes/);
    }
    for (const bad of ["-1", "abc", "70000"]) {
      expect(() => parseHubConfig([...open, `--port=${bad}`], {}), bad).toThrow(/--port takes/);
    }
    // Only --http-port takes a negative number as the next argument; elsewhere parseArgs' refusal stands.
    expect(() => parseHubConfig([...open, "--port", "-1"], {})).toThrow(/ambiguous/);
    expect(() => parseHubConfig([...open, "--host", "-1"], {})).toThrow(/ambiguous/);
    expect(() => parseHubConfig([...open, "--http-port", "--port"], {})).toThrow(/ambiguous/);
    // Nothing after `--` is an option.
    expect(() => parseHubConfig([...open, "--", "--http-port", "-1"], {})).toThrow(/Unexpected argument/);
  });

  it("starts without its HTTP side from the shell with `--http-port -1`", async () => {
    const dataDir = mkdtempSync(join(dir, "http-off-"));
    const hub = await startHubProcess({ dataDir, httpPort: -1, extraArgs: ["--allow-unauthenticated"] });
    try {
      expect(hub.httpPort).toBeNull();
      expect(hub.grpcPort).toBeGreaterThan(0);
    } finally {
      hub.child.kill("SIGTERM");
      await hub.exited;
    }
  });
});

describe("omnirelay-hub command line: --max-sources", () => {
  const open = [...base, "--allow-unauthenticated"];

  it("caps the sources at 256 by default and takes an integer from 1 to 1000000", () => {
    expect(usage).toMatch(/--max-sources <n>.*default 256/);
    expect(parseHubConfig(open, {}).maxSources).toBe(256);
    expect(parseHubConfig([...open, "--max-sources", "1"], {}).maxSources).toBe(1);
    expect(parseHubConfig([...open, "--max-sources=1000000"], {}).maxSources).toBe(1_000_000);
    for (const bad of ["0", "-1", "abc", "", "1.5", "1e3", "1000001", "0x10"]) {
      expect(() => parseHubConfig([...open, `--max-sources=${bad}`], {}), bad).toThrow(/--max-sources takes/);
    }
  });
});
