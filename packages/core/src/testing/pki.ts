import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A private key and its certificate, PEM. */
export interface TestKeyPair {
  readonly key: string;
  readonly cert: string;
}

/** A throwaway PKI for TLS tests. Every certificate is valid for two days. */
export interface TestPki {
  /** The CA that signed `server` and `client` (PEM certificate). */
  readonly ca: string;
  /** Server certificate: CN=localhost, SAN DNS:localhost and IP:127.0.0.1, extended key usage serverAuth. */
  readonly server: TestKeyPair;
  /** Client certificate signed by `ca`, CN = `clientCommonName`, extended key usage clientAuth. */
  readonly client: TestKeyPair;
  /** A second, unrelated CA. */
  readonly otherCa: string;
  /** A client certificate (same CN as `client`) signed by `otherCa`: a server trusting `ca` must refuse it. */
  readonly otherClient: TestKeyPair;
}

/** Options of {@link makeTestPki}. */
export interface TestPkiOptions {
  /** CN of the client certificates. @defaultValue 'omnirelay-test-client' */
  readonly clientCommonName?: string;
}

const curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function openssl(dir: string, args: string[]): Promise<void> {
  await run("openssl", args, { cwd: dir });
}

async function makeCa(dir: string, name: string, commonName: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-x509",
    ...curve,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=${commonName}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

async function makeLeaf(
  dir: string,
  options: { name: string; ca: string; commonName: string; extensions: string },
): Promise<TestKeyPair> {
  const { name, ca, commonName, extensions } = options;
  await openssl(dir, [
    "req",
    "-new",
    ...curve,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${commonName}`,
  ]);
  await writeFile(join(dir, `${name}.ext`), `${extensions}\nbasicConstraints=CA:FALSE\n`);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
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

/**
 * Generates a throwaway CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a second CA with
 * its own client certificate, by running `openssl` in `dir` (which must exist; the caller removes it).
 */
export async function makeTestPki(dir: string, options: TestPkiOptions = {}): Promise<TestPki> {
  const clientCn = options.clientCommonName ?? "omnirelay-test-client";
  await Promise.all([makeCa(dir, "ca", "OmniRelay Test CA"), makeCa(dir, "other-ca", "OmniRelay Other CA")]);
  const [server, client, otherClient] = await Promise.all([
    makeLeaf(dir, {
      name: "server",
      ca: "ca",
      commonName: "localhost",
      extensions: "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
    }),
    makeLeaf(dir, { name: "client", ca: "ca", commonName: clientCn, extensions: "extendedKeyUsage=clientAuth" }),
    makeLeaf(dir, {
      name: "other-client",
      ca: "other-ca",
      commonName: clientCn,
      extensions: "extendedKeyUsage=clientAuth",
    }),
  ]);
  return {
    ca: await readFile(join(dir, "ca.crt"), "utf8"),
    server,
    client,
    otherCa: await readFile(join(dir, "other-ca.crt"), "utf8"),
    otherClient,
  };
}
