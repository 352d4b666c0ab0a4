import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { makeTestPki, type TestKeyPair, type TestPki } from "@omnirelay/core/testing";

const run = promisify(execFile);

/** Core's test PKI plus more client certificates signed by the same CA. */
export interface HubTestPki extends TestPki {
  /** Client certificates by name, all signed by `ca`. */
  readonly clients: Readonly<Record<string, TestKeyPair>>;
}

/** A client certificate to add: its CN and optional subjectAltName entries (`DNS:x`, `URI:spiffe://…`). */
export interface ExtraClient {
  readonly name: string;
  readonly commonName: string;
  readonly subjectAltNames?: readonly string[];
}

/**
 * `makeTestPki(dir)` (CA, server, a client with CN `clientCommonName`), then one more client certificate per
 * `extra`, signed with the CA key that makeTestPki leaves in `dir` (ca.key / ca.crt).
 */
export async function makeHubTestPki(
  dir: string,
  options: { clientCommonName: string; extra: readonly ExtraClient[] },
): Promise<HubTestPki> {
  const pki = await makeTestPki(dir, { clientCommonName: options.clientCommonName });
  // Fail loudly if core's helper ever stops leaving its CA key where we sign with it.
  await access(join(dir, "ca.key"));
  const clients: Record<string, TestKeyPair> = { [options.clientCommonName]: pki.client };
  for (const extra of options.extra) clients[extra.name] = await signClient(dir, extra);
  return { ...pki, clients };
}

async function signClient(dir: string, client: ExtraClient): Promise<TestKeyPair> {
  const name = `extra-${client.name}`;
  const openssl = (args: string[]) => run("openssl", args, { cwd: dir });
  await openssl([
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${client.commonName}`,
  ]);
  const san = client.subjectAltNames?.length ? `subjectAltName=${client.subjectAltNames.join(",")}\n` : "";
  await writeFile(join(dir, `${name}.ext`), `${san}extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-set_serial",
    `0x${randomBytes(8).toString("hex")}`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  ]);
  return {
    key: await readFile(join(dir, `${name}.key`), "utf8"),
    cert: await readFile(join(dir, `${name}.crt`), "utf8"),
  };
}
