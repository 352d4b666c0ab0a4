import { type ChildProcess, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import { AzureBlobResourceLeaseObjectStore } from "../src/azure/index.js";
import { describeBackend } from "./backend-suite.js";

// Azurite's documented development account (public, not a secret).
const ACCOUNT = "devstoreaccount1";
const ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Spawns azurite's blob service on a free port (read from its stdout) and resolves its URL. */
async function startAzurite(): Promise<{ url: string; child: ChildProcess }> {
  const require = createRequire(import.meta.url);
  const main = join(dirname(require.resolve("azurite/package.json")), "dist", "src", "blob", "main.js");
  const args = [
    main,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    "0",
    "--inMemoryPersistence",
    "--extentMemoryLimit",
    "64",
  ];
  args.push("--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose");
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const url = await new Promise<string>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`azurite did not start: ${output}`)), 20_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`azurite exited with ${code}: ${output}`));
    });
  });
  return { url, child };
}

describeBackend(
  "Azure Blob (azurite)",
  async () => {
    const { url, child } = await startAzurite();
    const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY);
    const service = () => new BlobServiceClient(`${url}/${ACCOUNT}`, credential);
    await service().getContainerClient("audit").create();
    return {
      container: () => service().getContainerClient("audit"),
      newStore: () => new AzureBlobResourceLeaseObjectStore({ container: service().getContainerClient("audit") }),
      close: async () => {
        if (child.exitCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        await exited;
      },
    };
  },
  { contentTypeOf: async (backend, key) => (await backend.container().getBlobClient(key).getProperties()).contentType },
);
