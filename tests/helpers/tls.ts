/**
 * TLS for tests: throwaway certificates made with openssl(1) at test time
 * in a folder the test owns (a CA and a server certificate it signed, so
 * that clients can verify the server against the CA; the key 0600), and an
 * SMTP client that can switch to TLS (STARTTLS) mid-session.
 */
import { run } from "./peers.ts";
import { type ByteStream, SmtpClient } from "./smtp_client.ts";

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

/**
 * An SMTP client that reads whole replies, over plaintext or (after
 * startTls) TLS: smtp_client.ts's client, each reply as its lines joined
 * with "\n". A reply that does not come within 30 s throws.
 */
export class TlsTestClient {
  readonly client: SmtpClient;
  constructor(conn: Deno.Conn) {
    this.client = new SmtpClient(conn, { replyTimeoutMs: 30_000 });
  }
  /** The connection (the TLS one after startTls). */
  get conn(): ByteStream {
    return this.client.conn;
  }
  async reply(): Promise<string> {
    return (await this.client.reply()).join("\n");
  }
  /**
   * One write of the text: it may write only part (a TLS record), as
   * daemons/smtpd/tls_test.ts's flood step relies on.
   */
  async send(text: string): Promise<void> {
    await this.client.conn.write(new TextEncoder().encode(text));
  }
  async cmd(line: string): Promise<string> {
    return (await this.client.command(line)).join("\n");
  }
  /** Starts TLS, verifying the server as `hostname` against `ca` (PEM). */
  startTls(ca: string, hostname = "mx.test.example"): Promise<void> {
    return this.client.startTls(ca, hostname);
  }
  /** True when the server closes the connection (reads give null or fail). */
  closed(): Promise<boolean> {
    return this.client.waitClosed();
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
  return await issueTestCert({ dir, caFile: p("ca.pem") }, cn);
}

/**
 * Another certificate from the CA of an earlier {@link makeTestCert} (its
 * `dir` holds the CA's key): for `cn` and the DNS names `names` (default
 * `cn`), its files named after `cn` unless it is the first.
 */
export async function issueTestCert(
  ca: Pick<TestCert, "dir" | "caFile">,
  cn: string,
  names: string[] = [cn],
): Promise<TestCert> {
  const dir = ca.dir;
  const first = !(await Deno.stat(`${dir}/cert.pem`).catch(() => null));
  const p = (n: string) => `${dir}/${first ? "" : `${cn}-`}${n}`;
  const caKey = `${dir}/ca.key`;
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
    `subjectAltName = ${names.map((n) => `DNS:${n}`).join(",")}\nbasicConstraints = CA:FALSE\n`,
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    p("req.pem"),
    "-CA",
    ca.caFile,
    "-CAkey",
    caKey,
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
    caFile: ca.caFile,
    cert: await Deno.readTextFile(p("cert.pem")),
    key: await Deno.readTextFile(p("key.pem")),
    ca: await Deno.readTextFile(ca.caFile),
  };
}
