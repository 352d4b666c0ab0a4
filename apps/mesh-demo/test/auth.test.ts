import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { exposureNotice, parseConfig } from "../src/config.js";
import {
  eventually,
  freePort,
  getJson,
  killAll,
  type MeshStateDoc,
  mainScript,
  startDemo,
  startDispatcher,
  tempDir,
} from "./helpers.js";

const run = promisify(execFile);
const guide = readFileSync(resolve(import.meta.dirname, "../../../docs/guides/mesh-demo.md"), "utf8");

afterEach(killAll);

/** A shared-secret file as the guide makes it. */
function secretFile(dir: string, name = "mesh-secret"): string {
  const path = join(dir, name);
  writeFileSync(path, `${Buffer.from(crypto.getRandomValues(new Uint8Array(48))).toString("base64")}\n`);
  return path;
}

/** An HS256 token signed with `secret` (an attacker's guess or another mesh's secret). */
function foreignToken(secret: string): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: "mesh-admin", iss: "omnirelay-mesh-demo", aud: "resourcelease-mesh-demo", exp: now + 600 };
  const head = `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}`;
  return `${head}.${createHmac("sha256", secret).update(head).digest("base64url")}`;
}

async function rpc(url: string, procedure: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "rpc-procedure": procedure, "content-type": "application/json", ...headers },
    body: "{}",
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function enqueue(httpUrl: string, headers: Record<string, string>, body: unknown = {}) {
  const res = await fetch(`${httpUrl}/demo/enqueue`, {
    method: "POST",
    headers,
    body: JSON.stringify({ catalog: "sec", table: "t", operation: "CreateTable", ...(body as object) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function mint(file: string, subject: string): Promise<string> {
  const { stdout } = await run(process.execPath, [mainScript, "--mint-token", subject, "--auth-secret-file", file]);
  return stdout.trim();
}

describe("who can reach the mesh demo", () => {
  it("says in its startup output that it listens on loopback only and that authentication is off", async () => {
    const dir = tempDir();
    try {
      const { demo } = await startDispatcher(dir.path);
      const line = await demo.waitForLine(/Listening on loopback only/);
      expect(JSON.parse(line)).toMatchObject({
        level: 30,
        msg: expect.stringMatching(/^Listening on loopback only \(127\.0\.0\.1\):.*Authentication is off/),
      });
      // The guide shows this very line.
      expect(guide).toContain(JSON.parse(line).msg);
      expect(JSON.parse(await demo.waitForLine(/Dispatcher ready/))).toMatchObject({ auth: "off" });
    } finally {
      dir.remove();
    }
  });

  it("warns when it would listen beyond loopback without authentication", () => {
    const at = (rpcUrl: string, auth: boolean) =>
      exposureNotice({ rpcUrl, httpUrl: "http://127.0.0.1:5158", ...(auth ? { authSecretFile: "/s" } : {}) });
    // Without the diagnostics role only the RPC address counts.
    expect(exposureNotice({ rpcUrl: "http://127.0.0.1:7420" }).message).toMatch(
      /^Listening on loopback only \(127\.0\.0\.1\):/,
    );
    expect(at("http://127.0.0.1:7420", false).level).toBe("info");
    expect(at("http://[::1]:7420", false).message).toMatch(/^Listening on loopback only/);
    expect(at("http://0.0.0.0:7420", false)).toEqual({
      level: "warn",
      message: expect.stringMatching(/^Listening beyond loopback \(0\.0\.0\.0, 127\.0\.0\.1\).*Authentication is off/),
    });
    expect(at("http://0.0.0.0:7420", true)).toEqual({
      level: "info",
      message: expect.stringMatching(/JWT authentication is on/),
    });
  });

  it("refuses bad auth flags with a usage error", async () => {
    expect(() => parseConfig(["--mint-token", "x"], {})).toThrow(/--mint-token needs --auth-secret-file/);
    const dir = tempDir();
    try {
      const short = join(dir.path, "short");
      writeFileSync(short, "too short\n");
      const demo = startDemo(["--roles", "dispatcher", "--auth-secret-file", short, "--data-dir", dir.path]);
      expect((await demo.exited).code).toBe(2);
      expect(demo.lines.join("\n")).toMatch(/--auth-secret-file must hold at least 32 bytes/);
    } finally {
      dir.remove();
    }
  });
});

describe("mesh demo with --auth-secret-file", () => {
  it("refuses anonymous and forged calls; the seeder and a worker with the secret make progress, one without does not", async () => {
    const dir = tempDir();
    try {
      const file = secretFile(dir.path);
      const grpcUrl = `http://127.0.0.1:${await freePort()}`;
      const { demo, rpcUrl, httpUrl } = await startDispatcher(join(dir.path, "data"), [
        "--auth-secret-file",
        file,
        "--grpc-url",
        grpcUrl,
      ]);
      expect(JSON.parse(await demo.waitForLine(/Dispatcher ready/))).toMatchObject({ auth: "jwt" });
      await demo.waitForLine(/Listening on loopback only .* JWT authentication is on/);
      const lakehouse = "resourcelease.mesh.lakehouse";

      // Anonymous and forged RPCs: refused, with the stable codes.
      expect(await rpc(rpcUrl, `${lakehouse}::drain`)).toMatchObject({
        status: 401,
        body: { code: "omnirelay.auth.required" },
      });
      const forged = { authorization: `Bearer ${foreignToken("a-guessed-secret-that-is-long-enough-!!")}` };
      expect(await rpc(rpcUrl, `${lakehouse}::drain`, forged)).toMatchObject({
        status: 401,
        body: { code: "omnirelay.auth.invalid_token" },
      });
      const json = { "content-type": "application/json" };
      expect(await enqueue(httpUrl, json)).toMatchObject({ status: 401, body: { code: "omnirelay.auth.required" } });

      // A minted token passes, through the diagnostics node too.
      const admin = { authorization: `Bearer ${await mint(file, "mesh-admin")}` };
      expect((await rpc(rpcUrl, `${lakehouse}::stats`, admin)).status).toBe(200);
      expect(await enqueue(httpUrl, { ...json, ...admin })).toMatchObject({ status: 200, body: { duplicate: false } });
      // The page's redrive goes through the dispatcher with the caller's token too.
      const redrive = async (headers: Record<string, string>) => {
        const res = await fetch(`${httpUrl}/demo/redrive`, { method: "POST", headers, body: "{}" });
        return { status: res.status, body: (await res.json()) as Record<string, any> };
      };
      expect(await redrive(json)).toMatchObject({ status: 401, body: { code: "omnirelay.auth.required" } });
      expect(await redrive({ ...json, ...admin })).toMatchObject({ status: 200, body: { total: 0 } });
      // The control plane: reads need a principal, the toggles mesh-admin.
      expect((await fetch(`${httpUrl}/omnirelay/control/queues`)).status).toBe(401);
      expect((await fetch(`${httpUrl}/omnirelay/control/queues`, { headers: admin })).status).toBe(200);
      expect((await fetch(`${httpUrl}/readyz`)).status).toBe(200);

      // Roles with the secret authenticate on their own; a worker with another secret gets nowhere.
      const intruderSecret = secretFile(dir.path, "other-secret");
      startDemo(["--roles", "seeder", "--rpc-url", rpcUrl, "--seeder-interval", "50ms", "--auth-secret-file", file]);
      startDemo(["--roles", "worker", "--rpc-url", rpcUrl, "--worker-peer-id", "intruder", "--work-ms", "10"], {
        MESH_DEMO_AUTH_SECRET_FILE: intruderSecret,
      });
      startDemo(["--roles", "worker", "--rpc-url", rpcUrl, "--worker-peer-id", "good-worker", "--work-ms", "10"], {
        MESH_DEMO_AUTH_SECRET_FILE: file,
      });
      // Over gRPC the worker's token travels as metadata and passes the same middleware.
      const grpcWorker = ["--worker-peer-id", "good-grpc-worker", "--transport", "grpc", "--grpc-url", grpcUrl];
      startDemo(["--roles", "worker", "--rpc-url", rpcUrl, ...grpcWorker, "--work-ms", "10"], {
        MESH_DEMO_AUTH_SECRET_FILE: file,
      });
      const state = await eventually(async () => {
        const doc = await getJson<MeshStateDoc>(`${httpUrl}/demo/state`);
        const by = (peer: string) => doc.catalogs.recentOperations.filter((o) => o.appliedBy === peer).length;
        return by("good-worker") >= 3 && by("good-grpc-worker") >= 1 && doc;
      }, 25_000);
      expect(state.catalogs.recentOperations.some((o) => o.appliedBy === "intruder")).toBe(false);
      const metrics = await (await fetch(`${httpUrl}/metrics`)).text();
      const refusedLeases = [...metrics.matchAll(/^omnirelay_http_requests_total\{([^}]*)\} (\d+)$/gm)].filter(
        (m) => /::lease"/.test(m[1]!) && /status="unauthenticated"/.test(m[1]!),
      );
      expect(refusedLeases.reduce((n, m) => n + Number(m[2]), 0)).toBeGreaterThan(0);
      expect(state.health.peers.map((p) => p.peerId)).not.toContain("intruder");
    } finally {
      dir.remove();
    }
  });
});

describe("--mesh with --auth-secret-file", () => {
  it("hands the secret to every process it starts: they all authenticate, an anonymous caller does not", async () => {
    const dir = tempDir();
    try {
      const file = secretFile(dir.path);
      const ports = { rpc: await freePort(), http: await freePort(), grpc: await freePort() };
      const rpcUrl = `http://127.0.0.1:${ports.rpc}`;
      const httpUrl = `http://127.0.0.1:${ports.http}`;
      const launcher = startDemo([
        "--mesh",
        "--data-dir",
        join(dir.path, "data"),
        "--rpc-url",
        rpcUrl,
        "--http-url",
        httpUrl,
        "--grpc-url",
        `http://127.0.0.1:${ports.grpc}`,
        "--seeder-interval",
        "50ms",
        "--work-ms",
        "5-20",
        "--auth-secret-file",
        file,
      ]);
      await launcher.waitForLine(/Press Ctrl-C to stop/, 30_000);
      expect(launcher.lines.join("\n")).toMatch(/access {7}Listening on loopback only .* JWT authentication is on/);
      await eventually(async () => {
        const state = await getJson<MeshStateDoc>(`${httpUrl}/demo/state`);
        const by = (peer: string) => state.catalogs.recentOperations.some((o) => o.appliedBy === peer);
        return by("mesh-worker-a") && by("mesh-worker-b");
      }, 25_000);
      expect(await rpc(rpcUrl, "resourcelease.mesh.lakehouse::drain")).toMatchObject({ status: 401 });
      expect(launcher.lines.join("\n")).not.toMatch(/omnirelay\.auth\./);
      launcher.proc.kill("SIGINT");
      expect((await launcher.exited).code).toBe(0);
    } finally {
      await killAll();
      dir.remove();
    }
  });
});

/** Runs the guide's commands through a `pnpm` on PATH that execs the built program (as `pnpm --filter … start` does). */
function shimDir(root: string): string {
  const bin = join(root, "bin");
  mkdirSync(bin, { recursive: true });
  const shim = join(bin, "pnpm");
  writeFileSync(
    shim,
    [
      "#!/usr/bin/env bash",
      "# pnpm [--silent] --filter @omnirelay/mesh-demo start -- ARGS  ->  node dist/main.js ARGS",
      "args=(); seen=0",
      'for a in "$@"; do if [ "$seen" = 1 ]; then args+=("$a"); elif [ "$a" = "--" ]; then seen=1; fi; done',
      `exec "${process.execPath}" "${mainScript}" "\${args[@]}"`,
      "",
    ].join("\n"),
  );
  chmodSync(shim, 0o755);
  return bin;
}

/** The ```bash / ```json blocks of one section of the guide, in order. */
function section(title: string): Array<{ lang: string; body: string }> {
  const start = guide.indexOf(`## ${title}`);
  const end = guide.indexOf("\n## ", start + 3);
  const text = guide.slice(start, end < 0 ? undefined : end);
  return [...text.matchAll(/```(bash|json)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
}

/** Deep match where an expected string like "<number>" matches any value. */
function matches(actual: unknown, expected: unknown): boolean {
  if (typeof expected === "string" && /^<[a-z]+>$/.test(expected)) return actual !== undefined;
  if (expected && typeof expected === "object") {
    if (!actual || typeof actual !== "object") return false;
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    return [...new Set([...Object.keys(a), ...Object.keys(e)])].every((k) => matches(a[k], e[k]));
  }
  return actual === expected;
}

describe("docs/guides/mesh-demo.md, run as written", () => {
  it("the authentication walkthrough: secret, three roles, a token, an enqueue and a refused drain", async () => {
    const dir = tempDir();
    const started: ChildProcess[] = [];
    try {
      const [rpc, http] = [await freePort(), await freePort()];
      const env = { ...process.env, PATH: `${shimDir(dir.path)}:${process.env.PATH}` };
      const local = (cmd: string) =>
        cmd.replaceAll("127.0.0.1:7420", `127.0.0.1:${rpc}`).replaceAll("127.0.0.1:5158", `127.0.0.1:${http}`);
      const blocks = section("Who can reach it, and authentication");
      expect(blocks.map((b) => b.lang)).toEqual(["bash", "bash", "bash", "json", "bash", "json"]);
      const [makeSecret, roles, enqueueCmd, enqueueOut, drainCmd, drainOut] = blocks.map((b) => b.body);

      await run("bash", ["-c", `set -euo pipefail\n${makeSecret}`], { cwd: dir.path, env });
      expect(readFileSync(join(dir.path, "mesh-secret"), "utf8").trim().length).toBeGreaterThanOrEqual(32);

      // Each role line is a long-running process of its own ("each in its own terminal").
      const lines = roles!.trim().split("\n");
      expect(lines).toHaveLength(3);
      const output: string[] = [];
      for (const [i, line] of lines.entries()) {
        const proc = spawn("bash", ["-c", `exec ${local(line)}`], { cwd: dir.path, env, stdio: "pipe" });
        started.push(proc);
        createInterface({ input: proc.stdout! }).on("line", (l) => output.push(l));
        createInterface({ input: proc.stderr! }).on("line", (l) => output.push(l));
        if (i === 0) await eventually(async () => output.some((l) => l.includes("Dispatcher ready")), 20_000);
      }

      const script = ["set -euo pipefail", local(enqueueCmd!), "echo; echo ----", local(drainCmd!)].join("\n");
      const { stdout } = await run("bash", ["-c", script], { cwd: dir.path, env });
      const [enqueued, drained] = stdout.split("----").map((s) => JSON.parse(s.trim()));
      expect(matches(enqueued, JSON.parse(enqueueOut!)), JSON.stringify(enqueued)).toBe(true);
      expect(drained).toEqual(JSON.parse(drainOut!));

      // The seeder and the worker started as shown authenticate: the worker applies what the seeder enqueues.
      await eventually(async () => {
        const doc = await getJson<MeshStateDoc>(`http://127.0.0.1:${http}/demo/state`);
        return doc.catalogs.recentOperations.filter((o) => o.appliedBy === "mesh-worker-a").length >= 2;
      }, 25_000);
      expect(output.join("\n")).not.toMatch(/omnirelay\.auth\./);
    } finally {
      for (const proc of started) proc.kill("SIGKILL");
      await Promise.all(
        started.map((p) => (p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once("exit", r)) : 0)),
      );
      dir.remove();
    }
  });

  it("the endpoint examples work against a dispatcher without authentication", async () => {
    const dir = tempDir();
    try {
      const { httpUrl } = await startDispatcher(dir.path);
      const block = guide.match(/```bash\n(curl -s http:\/\/127\.0\.0\.1:5158\/demo\/enqueue[\s\S]*?)```/)?.[1];
      expect(block).toBeDefined();
      const port = new URL(httpUrl).port;
      const script = `set -euo pipefail\n${block!.replaceAll("127.0.0.1:5158", `127.0.0.1:${port}`).replace("\n", "\necho; echo ----\n")}`;
      const { stdout } = await run("bash", ["-c", script]);
      const [enqueued, catalogs] = stdout.split("----").map((s) => JSON.parse(s.trim()));
      expect(enqueued).toMatchObject({ duplicate: false, sequenceId: 1 });
      expect(catalogs).toMatchObject({ tableCount: expect.any(Number) });
      // The same body as text/plain (what a browser sends cross-origin without asking) is refused.
      const plain = await fetch(`${httpUrl}/demo/enqueue`, { method: "POST", body: '{"catalog":"x"}' });
      expect(plain.status).toBe(415);
      const foreign = await enqueue(httpUrl, { "content-type": "application/json", origin: "http://evil.example" });
      expect(foreign).toMatchObject({ status: 403, body: { code: "mesh.demo.origin_forbidden" } });
      // Redrive is guarded the same way.
      const plainRedrive = await fetch(`${httpUrl}/demo/redrive`, { method: "POST", body: "{}" });
      expect(plainRedrive.status).toBe(415);
      const foreignRedrive = await fetch(`${httpUrl}/demo/redrive`, {
        method: "POST",
        headers: { "content-type": "application/json", origin: "http://evil.example" },
        body: "{}",
      });
      expect(foreignRedrive.status).toBe(403);
      expect(await foreignRedrive.json()).toMatchObject({ code: "mesh.demo.origin_forbidden" });
    } finally {
      dir.remove();
    }
  });
});
