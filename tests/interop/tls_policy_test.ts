/**
 * The TLS attributes of a policy delegation request, differentially: a
 * real Postfix 3.7 and a Postwarden instance get the same main.cf
 * (STARTTLS with a throwaway certificate made by openssl, and
 * check_policy_service pointing at a recording policy server run here),
 * the same client does STARTTLS and RCPT on each, and the attributes each
 * server sends must be the same: encryption_protocol, encryption_cipher,
 * encryption_keysize, and the ccert_* attributes (empty: no client
 * certificate is requested). A second session without STARTTLS checks
 * the attributes are empty (keysize 0) on both.
 *
 * Needs root (Postfix); without it or the peers the test is skipped
 * loudly, under CI=true it fails.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { waitUntil } from "../helpers/instance.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { makeTestCert, TlsTestClient } from "../helpers/tls.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const NAMES = [
  "ccert_subject",
  "ccert_issuer",
  "ccert_fingerprint",
  "ccert_pubkey_fingerprint",
  "encryption_protocol",
  "encryption_cipher",
  "encryption_keysize",
];

/** A policy server that answers DUNNO and keeps each request's attributes. */
function recordingPolicyServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: Map<string, string>[] = [];
  const conns: Deno.Conn[] = [];
  (async () => {
    for await (const c of listener) {
      conns.push(c);
      (async () => {
        let buf = "";
        const b = new Uint8Array(8192);
        for (;;) {
          const n = await c.read(b).catch(() => null);
          if (n === null) return;
          buf += new TextDecoder().decode(b.subarray(0, n));
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const attrs = new Map<string, string>();
            for (const line of buf.slice(0, end).split("\n")) {
              const eq = line.indexOf("=");
              attrs.set(line.slice(0, eq), line.slice(eq + 1));
            }
            buf = buf.slice(end + 2);
            requests.push(attrs);
            await c.write(new TextEncoder().encode("action=DUNNO\n\n")).catch(() => {});
          }
        }
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** One RCPT with STARTTLS (or without), the TLS attributes of the policy request it made. */
async function attributesOf(
  port: number,
  ca: string,
  srv: ReturnType<typeof recordingPolicyServer>,
  starttls: boolean,
): Promise<string[]> {
  const before = srv.requests.length;
  const c = new TlsTestClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  try {
    await c.reply();
    await c.cmd("EHLO client.example");
    if (starttls) {
      assert((await c.cmd("STARTTLS")).startsWith("220"));
      await c.startTls(ca);
      await c.cmd("EHLO client.example");
    }
    await c.cmd("MAIL FROM:<a@example.com>");
    await c.cmd("RCPT TO:<user@mx.test.example>");
    await c.cmd("QUIT");
  } finally {
    try {
      c.conn.close();
    } catch { /* closed */ }
  }
  await waitUntil(() => Promise.resolve(srv.requests.length > before), 10_000, "a policy request");
  const a = srv.requests[before];
  return NAMES.map((n) => `${n}=${a.get(n) ?? "(absent)"}`);
}

Deno.test({
  name: "tls policy interop: encryption_* and ccert_* attributes as Postfix sends them",
  ...opts,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !havePeer("/usr/bin/openssl") || !haveRoot("a real Postfix")) return;
    const { startPostfix } = await import("../helpers/postfix.ts");
    const { startInstance } = await import("../helpers/instance.ts");
    const dir = await Deno.makeTempDir({ prefix: "tls-policy-" });
    await Deno.chmod(dir, 0o755); // both masters read the key as root
    const srv = recordingPolicyServer();
    try {
      const cert = await makeTestCert(dir);
      const mainCf = [
        "myhostname = mx.test.example",
        "mydestination = $myhostname, localhost",
        "smtpd_error_sleep_time = 0",
        "smtpd_tls_security_level = may",
        `smtpd_tls_cert_file = ${cert.certFile}`,
        `smtpd_tls_key_file = ${cert.keyFile}`,
        `smtpd_recipient_restrictions = check_policy_service inet:127.0.0.1:${srv.port}, ` +
        "permit_mynetworks, reject_unauth_destination",
      ].join("\n");
      const results: Record<string, string[][]> = {};
      const pf = await startPostfix({ mainCf, myhostname: "mx.test.example" });
      try {
        results.postfix = [
          await attributesOf(pf.port, cert.ca, srv, true),
          await attributesOf(pf.port, cert.ca, srv, false),
        ];
      } finally {
        await pf.stop();
      }
      const pw = await startInstance({ mainCf });
      try {
        results.postwarden = [
          await attributesOf(pw.port, cert.ca, srv, true),
          await attributesOf(pw.port, cert.ca, srv, false),
        ];
      } finally {
        await pw.stop();
      }
      await t.step("after STARTTLS: the same protocol, cipher and key size", () => {
        assertEquals(results.postwarden[0], results.postfix[0]);
        assert(results.postfix[0].includes("encryption_protocol=TLSv1.3"), results.postfix[0][4]);
      });
      await t.step("without TLS: the same empty attributes, keysize 0", () => {
        assertEquals(results.postwarden[1], results.postfix[1]);
        assert(results.postfix[1].includes("encryption_keysize=0"));
      });
    } finally {
      srv.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
