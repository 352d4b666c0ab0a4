import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Dispatcher, HttpInbound, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { GrpcInbound } from "@omnirelay/transport-grpc";
import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { installEnv, installedPackages, run } from "./helpers.js";

// The CLI as npm installs it: from its tarball (with core, its peer), no gRPC until the user adds the optional peer.
// A live dispatcher from this workspace serves HTTP and gRPC on free ports.

let project: string;
let component: ResourceLeaseDispatcherComponent;
let http: HttpInbound;
let grpc: GrpcInbound;
let grpcAddress: string;

const omnirelay = (args: readonly string[]) =>
  run("node", [join(project, "node_modules/@omnirelay/cli/dist/main.js"), ...args], {
    cwd: project,
    allowFailure: true,
  });

beforeAll(async () => {
  const dispatcher = new Dispatcher({ service: "packaging-cli" });
  component = new ResourceLeaseDispatcherComponent(dispatcher, {});
  http = new HttpInbound({ dispatcher });
  grpc = new GrpcInbound({ dispatcher });
  await http.start();
  grpcAddress = `127.0.0.1:${(await grpc.start()).port}`;
  await component.queue.enqueue({ resourceType: "table", resourceId: "a", partitionKey: "p", payloadEncoding: "json" });
  await component.queue.enqueue({ resourceType: "table", resourceId: "b", partitionKey: "p", payloadEncoding: "json" });

  project = mkdtempSync(join(tmpdir(), "omnirelay-cli-consumer-"));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "ops", version: "1.0.0", private: true }));
  const tarballs = inject("tarballs");
  await run("npm", ["install", tarballs["@omnirelay/cli"]!, tarballs["@omnirelay/core"]!], {
    cwd: project,
    env: installEnv,
  });
});

afterAll(async () => {
  await grpc?.close({ graceMs: 0 });
  await http?.close({ graceMs: 0 });
  await component?.close();
  if (project) rmSync(project, { recursive: true, force: true });
});

it("installs without gRPC, runs --help, and reads stats from a live dispatcher over HTTP", async () => {
  const installed = installedPackages(join(project, "node_modules"));
  expect(installed.filter((n) => n.startsWith("@grpc/") || n === "@omnirelay/transport-grpc")).toEqual([]);
  const bin = await run(join(project, "node_modules/.bin/omnirelay"), ["--help"], { cwd: project });
  expect(bin.stdout).toMatch(/^Usage: omnirelay/m);
  expect(bin.stdout).toContain("Exit codes:");
  const stats = await omnirelay(["--url", http.url, "--json", "resourcelease", "stats"]);
  expect(stats.code, stats.stderr).toBe(0);
  expect(JSON.parse(stats.stdout).stats).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
});

it("--transport grpc without @omnirelay/transport-grpc: a coded error saying what to npm install (exit 2)", async () => {
  const r = await omnirelay(["--transport", "grpc", "--url", grpcAddress, "resourcelease", "stats"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/^error: omnirelay\.transport\.grpc_not_installed: /);
  expect(r.stderr).toContain("npm install @omnirelay/transport-grpc");
});

it("with the optional peer installed from its tarball, --transport grpc reads the same stats", async () => {
  await run("npm", ["install", inject("tarballs")["@omnirelay/transport-grpc"]!], { cwd: project, env: installEnv });
  const r = await omnirelay(["--transport", "grpc", "--url", grpcAddress, "--json", "resourcelease", "stats"]);
  expect(r.code, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).stats).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
});
