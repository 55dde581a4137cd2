/**
 * The canary behind lib/tls/ccert.ts: what Deno's TLS server (node:tls,
 * the library smtpd's STARTTLS runs on, used the way daemons/smtpd/tls.ts
 * uses it: a server TLSSocket over a Duplex) does with a client
 * certificate. Certificates are made by openssl here: a CA, a client
 * certificate it signed, and an unrelated self-signed certificate.
 *
 * It asserts the two defects that make Postwarden refuse client
 * certificates: a client that presents the CA-signed certificate with an
 * unrelated private key completes the handshake (no proof of possession),
 * and a self-signed certificate is accepted although `ca` is set and
 * rejectUnauthorized is true (no chain check). When a Deno upgrade fixes
 * them this test fails, saying so: then permit_tls_clientcerts and its
 * kin can be built (and this test turned around).
 *
 * A correct handshake (the right key) is checked too, so the test cannot
 * pass with a server that accepts nothing. Without openssl it is skipped
 * loudly; under CI=true it fails.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { havePeer, run } from "../helpers/peers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function openssl(args: string[]): Promise<void> {
  const r = await run("/usr/bin/openssl", args);
  if (r.code !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr}`);
}

/** What the server saw of one client handshake. */
interface Seen {
  /** The handshake finished on the server. */
  secure: boolean;
  /** SHA-256 fingerprint of the certificate the client presented, or "". */
  fingerprint: string;
}

/** A node:tls server over Deno connections, as smtpd runs it, asking for a client certificate. */
async function server(key: string, cert: string, ca: string) {
  const tls = await import("node:tls");
  const { Duplex } = await import("node:stream");
  const context = tls.createSecureContext(
    {
      key,
      cert,
      ca,
      requestCert: true,
      rejectUnauthorized: true,
    } as import("node:tls").SecureContextOptions,
  );
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Seen[] = [];
  (async () => {
    for await (const conn of listener) {
      const duplex = new Duplex({
        read() {
          const buf = new Uint8Array(16384);
          conn.read(buf).then(
            (n) => this.push(n === null ? null : buf.subarray(0, n)),
            () => this.push(null),
          );
        },
        write(chunk: Uint8Array, _e: string, cb: (e?: Error | null) => void) {
          conn.write(chunk).then(() => cb(), (e) => cb(e));
        },
      });
      duplex.on("error", () => {});
      const s = new tls.TLSSocket(
        duplex,
        {
          isServer: true,
          secureContext: context,
          requestCert: true,
          rejectUnauthorized: true,
        } as import("node:tls").TLSSocketOptions,
      );
      const record: Seen = { secure: false, fingerprint: "" };
      seen.push(record);
      s.on("error", () => {});
      s.on("secure", () => {
        record.secure = true;
        record.fingerprint = s.getPeerCertificate()?.fingerprint256 ?? "";
        s.end("hello\n");
      });
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, seen, close: () => listener.close() };
}

/** A node:tls client presenting `cert` with `key`; true when the server's greeting arrived. */
async function client(port: number, cert: string, key: string): Promise<boolean> {
  const tls = await import("node:tls");
  return await new Promise<boolean>((resolve) => {
    let got = false;
    const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, cert, key });
    const timer = setTimeout(() => s.destroy(), 10_000);
    s.on("data", (d: Uint8Array) => got ||= new TextDecoder().decode(d).startsWith("hello"));
    s.on("error", () => {});
    s.on("close", () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

Deno.test({
  name: "ccert canary: Deno's TLS server verifies neither possession nor chain of a client cert",
  ...opts,
  fn: async (t) => {
    if (!havePeer("/usr/bin/openssl")) return;
    const dir = await Deno.makeTempDir({ prefix: "ccert-canary-" });
    const p = (n: string) => `${dir}/${n}`;
    const selfSigned = (name: string, cn: string) =>
      openssl([
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        `/CN=${cn}`,
        "-keyout",
        p(`${name}.key`),
        "-out",
        p(`${name}.pem`),
      ]);
    try {
      await selfSigned("ca", "Canary CA");
      await selfSigned("server", "localhost");
      await selfSigned("stranger", "stranger.example");
      await openssl([
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=client.example",
        "-keyout",
        p("client.key"),
        "-out",
        p("client.csr"),
      ]);
      await openssl([
        "x509",
        "-req",
        "-in",
        p("client.csr"),
        "-CA",
        p("ca.pem"),
        "-CAkey",
        p("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        p("client.pem"),
      ]);
      const read = (n: string) => Deno.readTextFile(p(n));
      const srv = await server(
        await read("server.key"),
        await read("server.pem"),
        await read("ca.pem"),
      );
      const { X509Certificate } = await import("node:crypto");
      const clientFp = new X509Certificate(await read("client.pem")).fingerprint256;
      const strangerFp = new X509Certificate(await read("stranger.pem")).fingerprint256;
      try {
        await t.step("the right key: accepted, the certificate seen", async () => {
          assert(await client(srv.port, await read("client.pem"), await read("client.key")));
          assertEquals(srv.seen.at(-1), { secure: true, fingerprint: clientFp });
        });
        await t.step("someone else's certificate without its key: still accepted", async () => {
          const ok = await client(srv.port, await read("client.pem"), await read("stranger.key"));
          const fixed = "Deno's TLS now refuses a client certificate presented without its " +
            "private key: client certificates can be implemented (lib/tls/ccert.ts); unless it " +
            "is the client side that now refuses to send a certificate with a key that does " +
            "not match, which this test cannot tell apart: check with a raw TLS client";
          assert(ok, fixed);
          assertEquals(srv.seen.at(-1), { secure: true, fingerprint: clientFp }, fixed);
        });
        await t.step("a certificate outside the CA: still accepted", async () => {
          const ok = await client(srv.port, await read("stranger.pem"), await read("stranger.key"));
          const fixed = "Deno's TLS now checks a client certificate against `ca`: update " +
            "lib/tls/ccert.ts";
          assert(ok, fixed);
          assertEquals(srv.seen.at(-1), { secure: true, fingerprint: strangerFp }, fixed);
        });
      } finally {
        srv.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
