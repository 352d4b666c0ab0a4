import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  exampleBlocks,
  type FencedBlock,
  promisedLines,
  publishedPackages,
  readRepoFile,
  runProcess,
  runTsExample,
  typecheckExamples,
} from "../src/readme.js";
import { commandShims, startBackground, startDispatcher } from "../src/servers.js";

const readmes = ["README.md", ...publishedPackages.map((p) => `${p.dir}/README.md`)];
const blocksOf = (readme: string) => exampleBlocks(readRepoFile(readme));
const tsBlocks = (readme: string) => blocksOf(readme).filter((b) => b.lang === "ts");
const shBlocks = (readme: string, tag?: string) =>
  blocksOf(readme).filter((b) => b.lang === "sh" && !b.tags.includes("server") && (!tag || b.tags.includes(tag)));

let work: string;
let bin: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "omnirelay-readmes-"));
  bin = commandShims(join(work, "bin"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A fresh folder for one example: relative paths in it (queue.db, ./audit) land there. */
const freshDir = () => mkdtempSync(join(work, "run-"));

/** Each promised line must appear whole on stdout. */
function expectPromises(block: FencedBlock, stdout: string, where: string): void {
  const promised = promisedLines(block.body);
  expect(promised.length, `${where}: a runnable block says what it prints`).toBeGreaterThan(0);
  const lines = stdout.split("\n").map((l) => l.trimEnd());
  for (const line of promised) expect(lines, `${where} prints "${line}"`).toContain(line);
}

async function runTs(readme: string, block: FencedBlock, env: Record<string, string> = {}) {
  const where = `${readme}:${block.line}`;
  const result = await runTsExample(block.body, { name: readme, cwd: freshDir(), env, timeoutMs: 20_000 });
  expect(result.code, `${where} exited ${result.code}\n${result.stdout}\n${result.stderr}`).toBe(0);
  expectPromises(block, result.stdout, where);
  return result;
}

/**
 * Runs a shell block with the published commands on PATH; an `export NAME=…` line for a variable the harness provides
 * is replaced by the live value (the README shows the default address, the test has a free port).
 */
async function runSh(readme: string, block: FencedBlock, provided: Record<string, string>) {
  const where = `${readme}:${block.line}`;
  const script = block.body
    .split("\n")
    .filter((line) => !Object.keys(provided).some((name) => line.startsWith(`export ${name}=`)))
    .join("\n");
  const result = await runProcess("bash", ["-euo", "pipefail", "-c", script], {
    cwd: freshDir(),
    env: { ...provided, PATH: `${bin}:${process.env.PATH}` },
    timeoutMs: 30_000,
  });
  expect(result.code, `${where} exited ${result.code}\n${result.stdout}\n${result.stderr}`).toBe(0);
  expectPromises(block, result.stdout, where);
}

describe("README examples", () => {
  it("every README has a runnable example", () => {
    for (const readme of readmes) expect(blocksOf(readme).length, readme).toBeGreaterThan(0);
  });

  it("every TypeScript example type-checks as a strict NodeNext project against the built packages", () => {
    const sources = readmes.flatMap((readme) =>
      tsBlocks(readme).map((b) => ({ name: `${readme}-${b.line}`, source: b.body })),
    );
    // Every README but the CLI's (whose examples are shell sessions) has one.
    for (const readme of readmes.filter((r) => r !== "packages/cli/README.md")) {
      expect(tsBlocks(readme).length, readme).toBeGreaterThan(0);
    }
    expect(typecheckExamples(sources)).toEqual([]);
  });

  it("the type check catches an example that misuses the API", () => {
    const bad =
      'import { ResourceLeaseQueue } from "@omnirelay/core";\nnew ResourceLeaseQueue({ capacity: "many" });\n';
    const errors = typecheckExamples([{ name: "bad", source: bad }]);
    expect(errors.join("\n")).toMatch(/bad\.mts:2: Type 'string' is not assignable to type 'number'/);
  });

  const selfContained = readmes.filter((r) => r !== "apps/replication-hub/README.md");
  it.each(
    selfContained.flatMap((readme) => tsBlocks(readme).map((block) => [`${readme}:${block.line}`, readme, block])),
  )("%s runs and prints what it says", async (_name, readme, block) => {
    await runTs(readme as string, block as FencedBlock);
  });

  it("a failing example fails the check: a promise the program does not keep", async () => {
    const block: FencedBlock = { lang: "ts", tags: ["example"], line: 1, body: 'console.log("1"); // prints: 2' };
    await expect(runTs("synthetic", block)).rejects.toThrow(/prints "2"/);
  });
});

describe("packages/cli/README.md against a live dispatcher", () => {
  const readme = "packages/cli/README.md";
  it("the HTTP session runs, then the gRPC one", async () => {
    await using node = await startDispatcher();
    const http = shBlocks(readme).filter((b) => !b.tags.includes("grpc"));
    const grpc = shBlocks(readme, "grpc");
    expect(http.length).toBe(1);
    expect(grpc.length).toBe(1);
    await runSh(readme, http[0]!, { OMNIRELAY_URL: node.httpUrl });
    await runSh(readme, grpc[0]!, { OMNIRELAY_URL: node.grpcAddress });
  });
});

describe("apps/replication-hub/README.md", () => {
  const readme = "apps/replication-hub/README.md";
  it("the documented command starts a hub that the TypeScript example replicates to", async () => {
    const [server] = blocksOf(readme).filter((b) => b.tags.includes("server"));
    expect(server).toBeDefined();
    const command = server!.body.split("\n").find((l) => l.trim() && !l.startsWith("#"))!;
    expect(command).toMatch(/^omnirelay-hub /);
    const cwd = freshDir();
    // The documented command on free ports (a later --port wins).
    await using hub = startBackground(`exec ${command} --port 0 --http-port 0`, {
      cwd,
      env: { PATH: `${bin}:${process.env.PATH}` },
    });
    // The promised line, with any port numbers.
    const [promise] = promisedLines(server!.body);
    const shape = new RegExp(`^${promise!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/\d+/g, "\\d+")}$`);
    const listening = JSON.parse(await hub.waitForLine(shape)) as { grpcPort: number; httpPort: number };

    const [example] = tsBlocks(readme);
    await runTs(readme, example!, { HUB_ADDRESS: `127.0.0.1:${listening.grpcPort}` });
    // The hub itself reports the source and its checkpoint, as the README says /sources does.
    const sources = await (await fetch(`http://127.0.0.1:${listening.httpPort}/sources`)).text();
    expect(sources).toContain("billing-1");
    expect(existsSync(join(cwd, "hub-data", "billing-1.db")), "the source's log where the README says").toBe(true);
    expect(readRepoFile(readme)).toContain(`curl http://127.0.0.1:7951/sources`);
  });
});
