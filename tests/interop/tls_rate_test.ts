/**
 * smtpd_client_new_tls_session_rate_limit differentially: a real Postfix
 * 3.7 (with its anvil) and a Postwarden instance get the same main.cf
 * (STARTTLS with a throwaway certificate made by openssl, the limit 1, the
 * client outside mynetworks) and the same three sessions from one client:
 * the first STARTTLS is served, the second's handshake goes over the
 * limit (421 4.7.0 over TLS, right after the handshake), the third
 * STARTTLS is refused before the handshake (454 4.7.0). Replies, the
 * two warnings and the disconnect lines' command counts must be the same (the master.cf service name aside, which
 * both call `127.0.0.1:<port>`).
 *
 * Needs root (Postfix); without it or the peers the test is skipped
 * loudly, under CI=true it fails.
 *
 * @module
 */
import { assertEquals } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { makeTestCert, TlsTestClient } from "../helpers/tls.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The last line of a reply, or what happened instead (bounded: a missing reply fails, not hangs). */
async function next(c: TlsTestClient): Promise<string> {
  const timeout = new Promise<string>((r) => setTimeout(() => r("no reply"), 10_000));
  const got = c.reply().then((r) => r.split("\n").at(-1)!, () => "connection closed");
  return await Promise.race([got, timeout]);
}

/** The three sessions; replies with the server's own name masked. */
async function dialog(port: number, ca: string): Promise<string[]> {
  const out: string[] = [];
  const open = async () => new TlsTestClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  const close = (c: TlsTestClient) => {
    try {
      c.conn.close();
    } catch { /* closed */ }
  };
  // 1: a new TLS session at the limit: served.
  let c = await open();
  try {
    await next(c);
    await c.send("EHLO client.example\r\n");
    out.push(await next(c));
    await c.send("STARTTLS\r\n");
    out.push(await next(c));
    await c.startTls(ca);
    await c.send("EHLO client.example\r\n");
    out.push(await next(c));
    await c.send("QUIT\r\n");
    out.push(await next(c));
  } finally {
    close(c);
  }
  // 2: the handshake that goes over the limit: 421 over TLS, then the end.
  c = await open();
  try {
    await next(c);
    await c.send("EHLO client.example\r\n");
    out.push(await next(c));
    await c.send("STARTTLS\r\n");
    out.push(await next(c));
    await c.startTls(ca);
    out.push(await next(c));
  } finally {
    close(c);
  }
  // 3: over the limit already: STARTTLS refused before the handshake.
  c = await open();
  try {
    await next(c);
    await c.send("EHLO client.example\r\n");
    out.push(await next(c));
    await c.send("STARTTLS\r\n");
    out.push(await next(c));
    await c.send("QUIT\r\n");
    out.push(await next(c));
  } finally {
    close(c);
  }
  return out.map((l) => /^2[25]0 mx\.test\.example/.test(l) ? l.slice(0, 3) : l);
}

/** The rate limit warnings with the service port replaced, and the sessions' command counts. */
function warnings(log: string, port: number): string[] {
  return log.split("\n").flatMap((l) => {
    const m =
      /(?:warning: ((?:New TLS session rate limit|Refusing STARTTLS) .*)|(disconnect from .*starttls.*))$/
        .exec(l);
    return m ? [(m[1] ?? m[2]).replace(`127.0.0.1:${port}`, "127.0.0.1:PORT")] : [];
  });
}

Deno.test({
  name: "tls rate interop: smtpd_client_new_tls_session_rate_limit as Postfix's anvil",
  ...opts,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !havePeer("/usr/bin/openssl") || !haveRoot("a real Postfix")) return;
    const { onBoth } = await import("../helpers/differential.ts");
    const dir = await Deno.makeTempDir({ prefix: "tls-rate-" });
    await Deno.chmod(dir, 0o755); // both masters read the key as root
    try {
      const cert = await makeTestCert(dir);
      const mainCf = [
        "myhostname = mx.test.example",
        "mydestination = $myhostname, localhost",
        "mynetworks = 192.0.2.0/24",
        "smtpd_error_sleep_time = 0",
        "smtpd_tls_security_level = may",
        `smtpd_tls_cert_file = ${cert.certFile}`,
        `smtpd_tls_key_file = ${cert.keyFile}`,
        "smtpd_client_new_tls_session_rate_limit = 1",
      ].join("\n");
      const { theirs: [theirs, theirWarnings], ours: [ours, ourWarnings] } = await onBoth(
        mainCf,
        async (server) => {
          const replies = await dialog(server.port, cert.ca);
          // The third session's end (a failure shows the replies and the log's tail).
          const log = await waitForLog(server, /disconnect from .*starttls=0\/1 quit/, 10_000)
            .catch((e) => {
              throw new Error(`${(e as Error).message}\nreplies: ${JSON.stringify(replies)}`);
            });
          return [replies, warnings(log, server.port)] as const;
        },
      );
      await t.step("replies", () => {
        assertEquals(ours, theirs);
        assertEquals(
          ours[6],
          "421 4.7.0 mx.test.example Error: too many new TLS sessions from localhost[127.0.0.1]",
        );
        assertEquals(
          ours[8],
          "454 4.7.0 Error: too many new TLS sessions from localhost[127.0.0.1]",
        );
      });
      await t.step("warnings and the disconnect lines' command counts", () => {
        assertEquals(ourWarnings, theirWarnings);
        assertEquals(ourWarnings.length, 5);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
