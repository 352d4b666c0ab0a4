import { type ChildProcess, spawn } from "node:child_process";
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { request } from "node:https";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { makeTestPki, type TestPki } from "@omnirelay/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// docs/security.md's production configuration, run as written: its ```ts program is executed in a child process
// with a test PKI in place of /etc/omnirelay and a local key set in place of the identity provider, then called
// the way the page says it behaves.

const root = resolve(import.meta.dirname, "../../..");
const doc = readFileSync(join(root, "docs/security.md"), "utf8");
const program = /## Configuring a production deployment[\s\S]*?```ts\n([\s\S]*?)```/.exec(doc)?.[1];

const require = createRequire(import.meta.url);
const idp = generateKeyPairSync("rsa", { modulusLength: 2048 });
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** A token from the "identity provider": RS256 with its key unless told otherwise. */
function token(sub: string, extra: { exp?: number | null; alg?: string } = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { sub, iss: "https://idp.example.com/", aud: "omnirelay", iat: now };
  if (extra.exp !== null) claims.exp = extra.exp ?? now + 300;
  const head = `${b64({ alg: extra.alg ?? "RS256", kid: "k1", typ: "JWT" })}.${b64(claims)}`;
  const signature =
    extra.alg === "HS256"
      ? createHmac("sha256", "a-secret-someone-guessed-that-is-long-enough").update(head).digest("base64url")
      : sign("sha256", Buffer.from(head), idp.privateKey).toString("base64url");
  return `${head}.${signature}`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe("docs/security.md: the production configuration", () => {
  let dir: string;
  let pki: TestPki;
  let jwks: Server;
  let child: ChildProcess;
  let rpc: string;
  let control: string;

  /** An HTTPS call; `cert` presents worker-1's client certificate. */
  function call(
    url: string,
    options: { method?: string; headers?: Record<string, string>; body?: string; cert?: boolean },
  ): Promise<{ status: number; code?: string }> {
    const body = options.body ?? "";
    return new Promise((resolvePromise, reject) => {
      const req = request(
        url,
        {
          method: options.method ?? "POST",
          headers: { "content-length": String(Buffer.byteLength(body)), ...options.headers },
          ca: pki.ca,
          ...(options.cert ? { cert: pki.client.cert, key: pki.client.key } : {}),
          agent: false,
        },
        (res) => {
          let text = "";
          res.on("data", (c: Buffer) => {
            text += c.toString("utf8");
          });
          res.on("end", () => {
            let code: string | undefined;
            try {
              code = (JSON.parse(text) as { code?: string }).code;
            } catch {
              code = undefined;
            }
            resolvePromise({ status: res.statusCode ?? 0, ...(code ? { code } : {}) });
          });
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  const rpcCall = (procedure: string, options: { bearer?: string; cert?: boolean } = {}) =>
    call(rpc, {
      headers: {
        "content-type": "application/json",
        "rpc-procedure": procedure,
        ...(options.bearer ? { authorization: `Bearer ${options.bearer}` } : {}),
      },
      body: procedure.endsWith("::enqueue")
        ? JSON.stringify({
            payload: { resourceType: "t", resourceId: "1", partitionKey: "p", payloadEncoding: "json" },
          })
        : "{}",
      ...(options.cert ? { cert: true } : {}),
    });

  beforeAll(async () => {
    expect(program).toBeDefined();
    dir = mkdtempSync(join(tmpdir(), "omnirelay-security-doc-"));
    pki = await makeTestPki(dir, { clientCommonName: "worker-1" });
    writeFileSync(join(dir, "node.key"), pki.server.key);
    writeFileSync(join(dir, "node.crt"), pki.server.cert);
    writeFileSync(join(dir, "mesh-ca.crt"), pki.ca);
    const jwk = { ...idp.publicKey.export({ format: "jwk" }), kid: "k1", alg: "RS256", use: "sig" };
    jwks = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
    const [rpcPort, controlPort] = [await freePort(), await freePort()];
    rpc = `https://127.0.0.1:${rpcPort}/`;
    control = `https://127.0.0.1:${controlPort}`;
    // Resolve the program's imports to this checkout's builds.
    const coreDir = dirname(require.resolve("@omnirelay/core/package.json"));
    const jose = pathToFileURL(join(coreDir, "node_modules/jose/dist/webapi/index.js")).href;
    const script = program!
      .replaceAll("/etc/omnirelay/", `${dir}/`)
      .replace(
        "https://idp.example.com/.well-known/jwks.json",
        `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`,
      )
      .replace('host: "10.0.0.5"', 'host: "127.0.0.1"')
      .replace("port: 7420", `port: ${rpcPort}`)
      .replace("port: 7422", `port: ${controlPort}`)
      .replace('from "jose"', `from "${jose}"`)
      .replace('from "@omnirelay/core"', `from "${pathToFileURL(join(coreDir, "dist/index.js")).href}"`)
      .replace(/from "@omnirelay\/core\/(\w+)"/g, (_m, entry: string) => {
        return `from "${pathToFileURL(join(coreDir, `dist/${entry}.js`)).href}"`;
      })
      .replace(
        'from "@omnirelay/diagnostics"',
        `from "${pathToFileURL(join(root, "packages/diagnostics/dist/index.js")).href}"`,
      );
    const path = join(dir, "node.mjs");
    writeFileSync(path, `${script}\nconsole.log("ready");\n`);
    child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "pipe"] });
    const errors: string[] = [];
    createInterface({ input: child.stderr! }).on("line", (l) => errors.push(l));
    await new Promise<void>((ready, fail) => {
      createInterface({ input: child.stdout! }).on("line", (l) => l === "ready" && ready());
      child.once("exit", (code) => fail(new Error(`the program exited (${code}): ${errors.join("\n")}`)));
    });
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
    await new Promise((r) => jwks?.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it("lets anonymous callers read stats and nothing else", async () => {
    expect(await rpcCall("resourcelease::stats")).toEqual({ status: 200 });
    expect(await rpcCall("resourcelease::lease")).toEqual({ status: 401, code: "omnirelay.auth.required" });
    expect(await rpcCall("resourcelease::drain")).toEqual({ status: 401, code: "omnirelay.auth.required" });
  });

  it("grants each principal its rule: certificates and provider tokens alike", async () => {
    expect(await rpcCall("resourcelease::enqueue", { bearer: token("ingest") })).toEqual({ status: 200 });
    expect(await rpcCall("resourcelease::lease", { bearer: token("ingest") })).toEqual({
      status: 403,
      code: "omnirelay.auth.forbidden",
    });
    expect(await rpcCall("resourcelease::lease", { cert: true })).toEqual({ status: 200 });
    expect(await rpcCall("resourcelease::drain", { cert: true })).toEqual({
      status: 403,
      code: "omnirelay.auth.forbidden",
    });
    expect(await rpcCall("resourcelease::drain", { bearer: token("sre-oncall") })).toEqual({ status: 200 });
  });

  it("refuses an HS256 token and a token without exp", async () => {
    const invalid = { status: 401, code: "omnirelay.auth.invalid_token" };
    expect(await rpcCall("resourcelease::stats", { bearer: token("sre-oncall", { alg: "HS256" }) })).toEqual(invalid);
    expect(await rpcCall("resourcelease::stats", { bearer: token("sre-oncall", { exp: null }) })).toEqual(invalid);
  });

  it("lets only sre-oncall change the control plane, and never from a web page", async () => {
    const url = `${control}/omnirelay/control/logging`;
    const body = JSON.stringify({ level: "debug" });
    const json = { "content-type": "application/json" };
    const admin = { ...json, authorization: `Bearer ${token("sre-oncall")}` };
    expect(await call(url, { headers: { ...json, authorization: `Bearer ${token("ingest")}` }, body })).toEqual({
      status: 403,
      code: "omnirelay.auth.forbidden",
    });
    expect(await call(url, { headers: { ...admin, "content-type": "text/plain" }, body })).toEqual({
      status: 415,
      code: "omnirelay.control.unsupported_media_type",
    });
    expect(await call(url, { headers: { ...admin, origin: "https://evil.example" }, body })).toEqual({
      status: 403,
      code: "omnirelay.control.origin_forbidden",
    });
    expect(await call(url, { headers: admin, body })).toEqual({ status: 200 });
    expect(await call(`${control}/omnirelay/control/queues`, { method: "GET" })).toEqual({
      status: 401,
      code: "omnirelay.auth.required",
    });
    expect(await call(`${control}/omnirelay/control/queues`, { method: "GET", cert: true })).toEqual({ status: 200 });
    expect(await call(`${control}/metrics`, { method: "GET" })).toEqual({ status: 200 });
  });
});
