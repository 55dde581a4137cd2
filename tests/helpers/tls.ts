/**
 * TLS for tests: throwaway certificates made with openssl(1) at test time
 * in a folder the test owns (a CA and a server certificate it signed, so
 * that clients can verify the server against the CA; the key 0600), and an
 * SMTP client that can switch to TLS (STARTTLS) mid-session.
 */
import { run } from "./peers.ts";

/** A test CA and a server certificate signed by it. */
export interface TestCert {
  dir: string;
  /** Server certificate (PEM file). */
  certFile: string;
  /** Its private key (PEM file, mode 0600). */
  keyFile: string;
  /** The CA certificate (PEM file) to verify the server with. */
  caFile: string;
  cert: string;
  key: string;
  ca: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** An SMTP client that reads whole replies, over plaintext or (after startTls) TLS. */
export class TlsTestClient {
  buf = "";
  constructor(public conn: Deno.Conn) {}
  async reply(): Promise<string> {
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3} [^\n]*\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        return m[0].replaceAll("\r", "").trimEnd();
      }
      const b = new Uint8Array(8192);
      const n = await this.conn.read(b);
      if (n === null) throw new Error(`closed; had ${JSON.stringify(this.buf)}`);
      this.buf += dec.decode(b.subarray(0, n));
    }
  }
  async send(text: string): Promise<void> {
    await this.conn.write(enc.encode(text));
  }
  async cmd(line: string): Promise<string> {
    await this.send(line + "\r\n");
    return this.reply();
  }
  /** Starts TLS, verifying the server as `hostname` against `ca` (PEM). */
  async startTls(ca: string, hostname = "mx.test.example"): Promise<void> {
    this.conn = await Deno.startTls(this.conn as Deno.TcpConn, {
      hostname,
      caCerts: [ca],
    });
  }
  /** True when the server closes the connection (reads give null or fail). */
  async closed(): Promise<boolean> {
    try {
      const b = new Uint8Array(100);
      return (await this.conn.read(b)) === null;
    } catch {
      return true;
    }
  }
}

async function openssl(args: string[]): Promise<void> {
  const r = await run("openssl", args);
  if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
}

/** Makes a CA and a certificate for `cn` (also its DNS name) in `dir`. */
export async function makeTestCert(dir: string, cn = "mx.test.example"): Promise<TestCert> {
  const p = (n: string) => `${dir}/${n}`;
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=Test CA",
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.pem"),
  ]);
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    `/CN=${cn}`,
    "-keyout",
    p("key.pem"),
    "-out",
    p("req.pem"),
  ]);
  await Deno.writeTextFile(
    p("ext.cnf"),
    `subjectAltName = DNS:${cn}\nbasicConstraints = CA:FALSE\n`,
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    p("req.pem"),
    "-CA",
    p("ca.pem"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    p("ext.cnf"),
    "-out",
    p("cert.pem"),
  ]);
  await Deno.chmod(p("key.pem"), 0o600);
  return {
    dir,
    certFile: p("cert.pem"),
    keyFile: p("key.pem"),
    caFile: p("ca.pem"),
    cert: await Deno.readTextFile(p("cert.pem")),
    key: await Deno.readTextFile(p("key.pem")),
    ca: await Deno.readTextFile(p("ca.pem")),
  };
}
