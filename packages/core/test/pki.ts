import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM material for TLS tests, made fresh with the machine's openssl. */
export interface TestPki {
  ca: string;
  serverKey: string;
  serverCert: string;
  clientKey: string;
  clientCert: string;
  /** A client certificate signed by a different CA. */
  otherClientKey: string;
  otherClientCert: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

function issue(dir: string, name: string, subject: string, ca: string, ext?: string): void {
  openssl(dir, [
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    subject,
  ]);
  const args = [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
  ];
  if (ext) {
    writeFileSync(join(dir, `${name}.ext`), ext);
    args.push("-extfile", `${name}.ext`);
  }
  openssl(dir, args);
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost, a client certificate with CN `clientCn`, and a foreign one. */
export function makeTestPki(clientCn = "worker-1"): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "omnirelay-pki-"));
  for (const ca of ["ca", "other-ca"]) {
    openssl(dir, [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${ca}.key`,
      "-out",
      `${ca}.crt`,
      "-days",
      "2",
      "-subj",
      `/CN=${ca}`,
    ]);
  }
  issue(
    dir,
    "server",
    "/CN=localhost",
    "ca",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  issue(dir, "client", `/CN=${clientCn}`, "ca", "extendedKeyUsage=clientAuth\n");
  issue(dir, "other-client", `/CN=${clientCn}`, "other-ca", "extendedKeyUsage=clientAuth\n");
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return {
    ca: read("ca.crt"),
    serverKey: read("server.key"),
    serverCert: read("server.crt"),
    clientKey: read("client.key"),
    clientCert: read("client.crt"),
    otherClientKey: read("other-client.key"),
    otherClientCert: read("other-client.crt"),
  };
}
