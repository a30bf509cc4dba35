/**
 * Certificates for TLS tests, made fresh with openssl (ships with Debian;
 * scripts/test-deps.sh installs it if missing): a throwaway CA and a server
 * certificate it signed for 127.0.0.1, ::1 and localhost.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCertificate {
  /** PEM file of the CA that signed the certificate. */
  ca: string;
  cert: string;
  key: string;
}

/** Writes a CA and a server certificate with its key into `dir`; `name` tells several apart. */
export function makeTestCertificate(dir: string, name = "server"): TestCertificate {
  const files = { ca: join(dir, `${name}-ca.pem`), cert: join(dir, `${name}.pem`), key: join(dir, `${name}-key.pem`) };
  const caKey = join(dir, `${name}-ca-key.pem`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}-san.ext`);
  writeFileSync(ext, "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  openssl("req", "-x509", ...ec, "-keyout", caKey, "-out", files.ca, "-days", "2", "-subj", `/CN=bester test CA ${name}`);
  openssl("req", ...ec, "-keyout", files.key, "-out", csr, "-subj", "/CN=localhost");
  openssl("x509", "-req", "-in", csr, "-CA", files.ca, "-CAkey", caKey, "-CAcreateserial", "-out", files.cert, "-days", "2", "-extfile", ext);
  return files;
}
