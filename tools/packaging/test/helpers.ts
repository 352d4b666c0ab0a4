import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this package is tools/packaging). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** A workspace package that is published to npm. */
export interface PublishedPackage {
  readonly name: string;
  /** Its folder, relative to the repository root. */
  readonly dir: string;
}

/** Every workspace package without `private: true`, in a stable order. */
export function publishedPackages(root = repoRoot): PublishedPackage[] {
  const found: PublishedPackage[] = [];
  for (const group of ["packages", "apps", "tools"]) {
    for (const entry of readdirSync(join(root, group), { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = `${group}/${entry.name}`;
      let manifest: { name: string; private?: boolean };
      try {
        manifest = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
      } catch {
        continue;
      }
      if (!manifest.private) found.push({ name: manifest.name, dir });
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/** What a finished child process left. */
export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  readonly cwd: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Resolve with the result instead of rejecting on a non-zero exit. */
  readonly allowFailure?: boolean;
}

/** Runs a command to its end; rejects (with its output) on a non-zero exit unless `allowFailure`. */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
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
    child.on("error", reject);
    child.on("close", (code) => {
      const result = { code, stdout, stderr };
      if (code === 0 || options.allowFailure) resolve(result);
      else
        reject(
          new Error(`${command} ${args.join(" ")} exited ${code}\n${stdout.slice(-4000)}\n${stderr.slice(-4000)}`),
        );
    });
  });
}

/** The environment for installs: native modules build against the local Node headers (nothing is downloaded). */
export const installEnv: NodeJS.ProcessEnv = {
  npm_config_nodedir: "/usr",
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false",
};

/**
 * Lets an npm install in `project` take better-sqlite3's addon from the workspace instead of compiling it (~70 s of
 * one core here): the addon is packed as the prebuilt binary that better-sqlite3's install script (prebuild-install)
 * downloads from GitHub for a user online, put in the project's `.prebuilds` and named in its `.prebuild-installrc`.
 * The binary is used only when npm resolves the version the workspace built; another version is compiled as before.
 */
export async function offerWorkspaceSqliteAddon(project: string): Promise<void> {
  const fromSqliteLog = createRequire(join(repoRoot, "packages/replicator-sqlite/package.json"));
  const pkg = dirname(fromSqliteLog.resolve("better-sqlite3/package.json"));
  const addon = "build/Release/better_sqlite3.node";
  if (!existsSync(join(pkg, addon))) return;
  const prebuilds = join(project, ".prebuilds");
  mkdirSync(prebuilds, { recursive: true });
  const { version } = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run("tar", ["-czf", join(prebuilds, name), "-C", pkg, addon], { cwd: pkg });
  writeFileSync(join(project, ".prebuild-installrc"), `local-prebuilds=${prebuilds}\n`);
}

/** Packages that must never arrive with core + replicator-sqlite: gRPC, the cloud SDKs, prom-client. */
export const heavyPackages = /^(@grpc\/|@aws-sdk\/|@google-cloud\/|@azure\/|prom-client$)/;

/** Every package folder name under `node_modules` (scoped ones as `@scope/name`), nested ones included. */
export function installedPackages(nodeModules: string): string[] {
  const names: string[] = [];
  const walk = (dir: string): void => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.name.startsWith(".") || !(e.isDirectory() || e.isSymbolicLink())) continue;
      if (e.name.startsWith("@")) {
        for (const s of readdirSync(join(dir, e.name), { withFileTypes: true })) {
          names.push(`${e.name}/${s.name}`);
          walk(join(dir, e.name, s.name, "node_modules"));
        }
      } else {
        names.push(e.name);
        walk(join(dir, e.name, "node_modules"));
      }
    }
  };
  walk(nodeModules);
  return names;
}
