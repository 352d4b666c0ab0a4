import { spawn } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";

/** The repository root. */
export const repoRoot = resolve(import.meta.dirname, "..", "..", "..");

/** Where example modules are written while they run: inside the workspace, so `@omnirelay/*` imports resolve. */
export const scratchDir = resolve(import.meta.dirname, "..", ".run");

/** A package published to npm: its folder, the name users install, and the commands it puts on PATH. */
export interface PublishedPackage {
  readonly dir: string;
  readonly name: string;
  readonly bin?: string;
}

/** The published packages (common decisions of issue 15): the hub is published from apps/replication-hub. */
export const publishedPackages: readonly PublishedPackage[] = [
  { dir: "packages/core", name: "@omnirelay/core" },
  { dir: "packages/cli", name: "@omnirelay/cli", bin: "omnirelay" },
  { dir: "packages/diagnostics", name: "@omnirelay/diagnostics" },
  { dir: "packages/replicator-grpc", name: "@omnirelay/replicator-grpc" },
  { dir: "packages/replicator-object-storage", name: "@omnirelay/replicator-object-storage" },
  { dir: "packages/replicator-sqlite", name: "@omnirelay/replicator-sqlite" },
  { dir: "packages/store-postgres", name: "@omnirelay/store-postgres" },
  { dir: "packages/store-redis", name: "@omnirelay/store-redis" },
  { dir: "packages/transport-grpc", name: "@omnirelay/transport-grpc" },
  { dir: "apps/replication-hub", name: "@omnirelay/hub", bin: "omnirelay-hub" },
];

/** One fenced code block of a markdown file. */
export interface FencedBlock {
  /** The language, e.g. `ts` or `sh`. */
  readonly lang: string;
  /** The words after the language, e.g. `["example"]`. */
  readonly tags: readonly string[];
  readonly body: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
}

/** Every fenced (```) block of a markdown text, in order. */
export function fencedBlocks(markdown: string): FencedBlock[] {
  const blocks: FencedBlock[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) body.push(lines[i]!);
    if (i === lines.length) throw new Error(`unclosed code fence at line ${start + 1}`);
    blocks.push({
      lang: open[1]!,
      tags: open[2]!.trim().split(/\s+/).filter(Boolean),
      body: body.join("\n"),
      line: start + 1,
    });
  }
  return blocks;
}

/** Reads a file of the repository. */
export function readRepoFile(path: string): string {
  return readFileSync(join(repoRoot, path), "utf8");
}

/** The runnable blocks of a README: those whose info string says `example` (```ts example, ```sh example). */
export function exampleBlocks(markdown: string): FencedBlock[] {
  return fencedBlocks(markdown).filter((b) => b.tags.includes("example"));
}

/**
 * The output lines a block promises: a `// prints: <line>` (TypeScript) or `# prints: <line>` (shell) comment says
 * that `<line>` appears, whole, on the program's standard output.
 */
export function promisedLines(body: string): string[] {
  return [...body.matchAll(/(?:\/\/|#) prints: (.+)$/gm)].map((m) => m[1]!.trim());
}

/** Every `npm install …` command in a markdown text, as its words after `install` (a trailing `# comment` dropped). */
export function npmInstalls(markdown: string): string[][] {
  return [...markdown.matchAll(/^\s*npm (?:install|i) (.+)$/gm)].map((m) =>
    m[1]!
      .replace(/\s#.*$/, "")
      .split(/\s+/)
      .filter(Boolean),
  );
}

/** TypeScript to the JavaScript Node runs (types stripped, ESM kept as is). */
export function compileExample(source: string): string {
  const out = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
  });
  return out.outputText;
}

/**
 * Type-checks example sources as a user's strict NodeNext project would, against the built packages' declarations.
 * Returns one message per error (empty when they all compile).
 */
export function typecheckExamples(sources: ReadonlyArray<{ name: string; source: string }>): string[] {
  const dir = join(scratchDir, `typecheck-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  try {
    const files = sources.map(({ name, source }) => {
      const file = join(dir, `${name.replace(/[^A-Za-z0-9-]/g, "_")}.mts`);
      writeFileSync(file, source);
      return file;
    });
    const program = ts.createProgram(files, {
      target: ts.ScriptTarget.ES2022,
      lib: ["lib.es2022.d.ts"],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      types: ["node"],
      strict: true,
      noUncheckedIndexedAccess: true,
      skipLibCheck: true,
      noEmit: true,
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: ` : "";
      return `${where}${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What a finished child process did. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runProcess}. */
export interface RunOptions {
  readonly cwd: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Killed (SIGKILL) after this long. @defaultValue 30000 */
  readonly timeoutMs?: number;
}

/** Runs a command to its end; never rejects on a non-zero exit. */
export function runProcess(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Runs a TypeScript example with Node: compiled to a module inside the workspace, started with `cwd` as its folder. */
export async function runTsExample(
  source: string,
  options: RunOptions & { readonly name: string },
): Promise<RunResult> {
  mkdirSync(scratchDir, { recursive: true });
  const file = join(scratchDir, `${options.name.replace(/[^A-Za-z0-9-]/g, "_")}-${process.pid}.mjs`);
  writeFileSync(file, compileExample(source));
  try {
    return await runProcess(process.execPath, [file], options);
  } finally {
    rmSync(file, { force: true });
  }
}
