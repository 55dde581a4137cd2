/**
 * STARTTLS and wrapper mode end to end on a loopback socket: a session as
 * main.ts runs it (connectionIo, TlsServer), a client that speaks raw
 * bytes and then TLS (Deno.startTls, verifying the server against a test
 * CA), and a fake cleanup that records what is queued; new TLS sessions
 * counted by a real anvil state (smtpd_client_new_tls_session_rate_limit,
 * resumed sessions not counted). Needs openssl(1)
 * for the throwaway certificate.
 */
import { makeConfig } from "../../lib/config/mod.ts";
import { Logger } from "../../lib/log/mod.ts";
import { type CleanupEnvelope, CleanupSession } from "../../lib/cleanup/client.ts";
import { loadTlsMaterial } from "../../lib/tls/material.ts";
import { smtpdTlsPolicy } from "../../lib/tls/policy.ts";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { fakeCleanup } from "../../tests/helpers/fake_cleanup.ts";
import { makeTestCert, type TestCert, TlsTestClient as Client } from "../../tests/helpers/tls.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { restrictionContext } from "./restrictions.ts";
import { runSession } from "./session.ts";
import { type ClientLimits, clientLimits, limitSettings } from "./anvil.ts";
import { ipcConnect, ipcListen } from "../../lib/ipc/mod.ts";
import { serve as serveAnvil } from "../anvil/server.ts";
import { AnvilState } from "../anvil/state.ts";
import {
  authAllowed,
  authAllowedNow,
  cipherBits,
  connectionIo,
  establishedLine,
  receivedTlsClause,
  TlsServer,
} from "./tls.ts";

interface Harness {
  port: number;
  logs: string[];
  contents: string[];
  client(): Promise<Client>;
  /** What cleanup got, envelope by envelope. */
  readonly envelopes: CleanupEnvelope[];
  close(): Promise<void>;
}

/** One listener whose connections each run a session with `mainCf` (and `limits`, per session). */
async function serve(
  cert: TestCert,
  mainCf: string,
  limits?: () => ClientLimits,
): Promise<Harness> {
  const dir = await Deno.makeTempDir({ prefix: "smtpd-tls-" });
  const config = makeConfig(
    dir,
    "compatibility_level = 3.6\nmyhostname = mx.test.example\nmynetworks = 127.0.0.0/8\n" +
      `smtpd_tls_cert_file = ${cert.certFile}\nsmtpd_tls_key_file = ${cert.keyFile}\n` + mainCf,
    { hostname: "mx.test.example" },
  );
  const { policy, problems } = smtpdTlsPolicy(config);
  assertEquals(problems, []);
  const m = await loadTlsMaterial(policy, {
    readFile: (p) => Deno.readTextFile(p),
    stat: () => Promise.resolve({ uid: 0, mode: 0o600 }),
    asRoot: false,
  });
  assert(m.material, m.error ?? "");
  const server = await TlsServer.create(policy, m.material);
  const logs: string[] = [];
  const log = new Logger({
    program: "postwarden/smtpd",
    hostname: "mx",
    sinks: [(l) => logs.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const socket = `${dir}/cleanup`;
  const cleanup = fakeCleanup(socket, dir);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const sessions: Promise<void>[] = [];
  const restrictions = restrictionContext(config, (w) => log.warn(w));
  (async () => {
    for await (const conn of listener) {
      const { io, close } = connectionIo(conn, policy, server);
      sessions.push(
        runSession({
          config,
          log,
          client: { name: "localhost", addr: "127.0.0.1", port: 1 },
          ...io,
          openCleanup: () => CleanupSession.open(socket, { retryMs: 0 }),
          restrictions,
          limits: limits?.(),
        }).finally(close),
      );
    }
  })();
  const clients: Client[] = [];
  return {
    port: listener.addr.port,
    logs,
    get contents() {
      return cleanup.got.map((g) => g.content);
    },
    get envelopes() {
      return cleanup.got.map((g) => g.envelope);
    },
    async client() {
      const c = new Client(await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) {
        try {
          c.conn.close();
        } catch {
          // closed
        }
      }
      listener.close();
      await Promise.allSettled(sessions);
      await cleanup.server.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("tls: text as Postfix writes it", () => {
  const t = { protocol: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384", bits: 256, algBits: 256 };
  assertEquals(
    receivedTlsClause(t),
    "\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n" +
      "\t(No client certificate requested)\r\n",
  );
  assertEquals(
    establishedLine("localhost[127.0.0.1]", t),
    "Anonymous TLS connection established from localhost[127.0.0.1]: TLSv1.3 with cipher " +
      "TLS_AES_256_GCM_SHA384 (256/256 bits)",
  );
  assertEquals(cipherBits("ECDHE-RSA-AES128-GCM-SHA256"), 128);
  assertEquals(cipherBits("TLS_CHACHA20_POLY1305_SHA256"), 256);
});

Deno.test({
  name: "tls: STARTTLS sessions on a loopback socket",
  sanitizeOps: false,
  sanitizeResources: false,
  ignore: !havePeer("/usr/bin/openssl"),
  fn: async (t) => {
    const certDir = await Deno.makeTempDir({ prefix: "smtpd-tls-cert-" });
    const cert = await makeTestCert(certDir);
    try {
      await t.step("STARTTLS, then the session starts over; TLS in Received:", async () => {
        const h = await serve(
          cert,
          "smtpd_tls_security_level = may\nsmtpd_tls_received_header = yes\n" +
            "smtpd_tls_loglevel = 1\n",
        );
        try {
          const c = await h.client();
          assertMatch(await c.reply(), /^220 /);
          const ehlo = await c.cmd("EHLO client.example");
          assertMatch(ehlo, /\n250-STARTTLS\n/);
          assertEquals(await c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0 Ok");
          assertEquals(await c.cmd("STARTTLS now"), "501 5.5.4 Syntax: STARTTLS");
          assertEquals(await c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
          await c.startTls(cert.ca);
          // The transaction and the HELO name are gone.
          assertEquals(
            await c.cmd("RCPT TO:<b@example.com>"),
            "503 5.5.1 Error: need MAIL command",
          );
          const again = await c.cmd("EHLO client.example");
          assert(!again.includes("STARTTLS"), again);
          assertEquals(await c.cmd("STARTTLS"), "554 5.5.1 Error: TLS already active");
          assertEquals(await c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0 Ok");
          assertEquals(await c.cmd("RCPT TO:<b@example.com>"), "250 2.1.5 Ok");
          assertMatch(await c.cmd("DATA"), /^354 /);
          assertMatch(await c.cmd("Subject: hi\r\n\r\nbody\r\n."), /^250 2\.0\.0 Ok: queued as /);
          assertEquals(await c.cmd("QUIT"), "221 2.0.0 Bye");
          assert(await c.closed());
          await new Promise((r) => setTimeout(r, 100));
          const received = h.contents.at(-1) ?? "";
          assertMatch(
            received,
            /^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.3 with cipher TLS_\w+ \(\d+\/\d+ bits\)\)\r\n\t\(No client certificate requested\)\r\n\tby mx\.test\.example \(Postwarden\) with ESMTPS id /,
          );
          assert(
            h.logs.some((l) =>
              /^Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.3 with cipher TLS_\w+ \(\d+\/\d+ bits\)$/
                .test(l)
            ),
            h.logs.join("\n"),
          );
          assert(
            h.logs.some((l) => / ehlo=2 starttls=1\/3 mail=2 rcpt=1\/2 data=1 quit=1 /.test(l)),
            h.logs.join("\n"),
          );
        } finally {
          await h.close();
        }
      });

      await t.step(
        "REQUIRETLS (postwarden_requiretls): offered and taken over TLS only",
        async () => {
          const h = await serve(
            cert,
            "smtpd_tls_security_level = may\npostwarden_requiretls = yes\n",
          );
          try {
            const c = await h.client();
            assertMatch(await c.reply(), /^220 /);
            assert(!(await c.cmd("EHLO client.example")).includes("REQUIRETLS"));
            assertEquals(
              await c.cmd("MAIL FROM:<a@example.com> REQUIRETLS"),
              "555 5.5.4 Unsupported option: REQUIRETLS",
            );
            await c.cmd("STARTTLS");
            await c.startTls(cert.ca);
            assertMatch(await c.cmd("EHLO client.example"), /\n250-REQUIRETLS\n/);
            assertEquals(await c.cmd("MAIL FROM:<a@example.com> REQUIRETLS"), "250 2.1.0 Ok");
            assertEquals(await c.cmd("RCPT TO:<b@example.com>"), "250 2.1.5 Ok");
            assertMatch(await c.cmd("DATA"), /^354 /);
            assertMatch(await c.cmd("Subject: hi\r\n\r\nbody\r\n."), /^250 2\.0\.0 Ok: queued as /);
            // The next transaction has no REQUIRETLS unless it asks again.
            assertEquals(await c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0 Ok");
            assertEquals(await c.cmd("RCPT TO:<b@example.com>"), "250 2.1.5 Ok");
            assertMatch(await c.cmd("DATA"), /^354 /);
            assertMatch(await c.cmd("Subject: hi\r\n\r\nbody\r\n."), /^250 2\.0\.0 Ok: queued as /);
            await c.cmd("QUIT");
            await new Promise((r) => setTimeout(r, 100));
            assertEquals(h.envelopes.map((e) => e.attrs?.requiretls === true), [true, false]);
          } finally {
            await h.close();
          }
          // Not enabled: never offered, not taken even over TLS.
          const off = await serve(cert, "smtpd_tls_security_level = may\n");
          try {
            const c = await off.client();
            await c.reply();
            await c.cmd("EHLO client.example");
            await c.cmd("STARTTLS");
            await c.startTls(cert.ca);
            assert(!(await c.cmd("EHLO client.example")).includes("REQUIRETLS"));
            assertEquals(
              await c.cmd("MAIL FROM:<a@example.com> REQUIRETLS"),
              "555 5.5.4 Unsupported option: REQUIRETLS",
            );
          } finally {
            await off.close();
          }
        },
      );

      await t.step("plaintext pipelined after STARTTLS is discarded (CVE-2011-0411)", async () => {
        // With Postfix 3.9's smtpd_forbid_unauth_pipelining = yes (the default): STARTTLS
        // is not a command the client must wait after; its own code discards what follows.
        const h = await serve(cert, "smtpd_tls_security_level = may\n");
        try {
          const c = await h.client();
          await c.reply();
          await c.cmd("EHLO client.example");
          await c.send("STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.com>\r\n");
          assertEquals(await c.reply(), "220 2.0.0 Ready to start TLS");
          await c.startTls(cert.ca);
          // Had the injected MAIL been read, this would be a nested MAIL.
          assertEquals(await c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0 Ok");
          assertEquals(await c.cmd("QUIT"), "221 2.0.0 Bye");
          await c.closed();
          await new Promise((r) => setTimeout(r, 50));
          assert(
            h.logs.some((l) => / starttls=1 mail=1 quit=1 commands=4$/.test(l)),
            h.logs.join("\n"),
          );
        } finally {
          await h.close();
        }
      });

      await t.step("encrypt: 530 before STARTTLS, as Postfix", async () => {
        const h = await serve(cert, "smtpd_tls_security_level = encrypt\n");
        try {
          const c = await h.client();
          await c.reply();
          assertEquals(await c.cmd("HELO client.example"), "250 mx.test.example");
          for (
            const cmd of [
              "MAIL FROM:<a@example.com>",
              "RCPT TO:<b@example.com>",
              "DATA",
              "RSET",
              "VRFY a",
            ]
          ) {
            assertEquals(await c.cmd(cmd), "530 5.7.0 Must issue a STARTTLS command first", cmd);
          }
          assertEquals(await c.cmd("NOOP"), "250 2.0.0 Ok");
          assertEquals(await c.cmd("BOGUS"), "500 5.5.2 Error: command not recognized");
          assertEquals(await c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
          await c.startTls(cert.ca);
          assertEquals(await c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0 Ok");
          assertEquals(await c.cmd("QUIT"), "221 2.0.0 Bye");
        } finally {
          await h.close();
        }
      });

      await t.step("wrapper mode: TLS from the first byte, no STARTTLS", async () => {
        const h = await serve(cert, "smtpd_tls_wrappermode = yes\n");
        try {
          const raw = await Deno.connect({ hostname: "127.0.0.1", port: h.port });
          const c = new Client(raw);
          await c.startTls(cert.ca);
          assertMatch(await c.reply(), /^220 mx\.test\.example ESMTP/);
          const ehlo = await c.cmd("EHLO client.example");
          assert(!ehlo.includes("STARTTLS"), ehlo);
          assertEquals(await c.cmd("STARTTLS"), "554 5.5.1 Error: TLS already active");
          // After HELO, Postfix writes "with SMTP" even over TLS (ESMTPS is for EHLO).
          assertEquals(await c.cmd("HELO client.example"), "250 mx.test.example");
          assertEquals(await c.cmd("MAIL FROM:<a@example.com>"), "250 2.1.0 Ok");
          assertEquals(await c.cmd("RCPT TO:<b@example.com>"), "250 2.1.5 Ok");
          assertMatch(await c.cmd("DATA"), /^354 /);
          assertMatch(await c.cmd("Subject: hi\r\n\r\nbody\r\n."), /^250 /);
          assertEquals(await c.cmd("QUIT"), "221 2.0.0 Bye");
          await c.closed();
          await new Promise((r) => setTimeout(r, 100));
          // smtpd_tls_received_header = no: no TLS clause.
          assertMatch(
            h.contents.at(-1) ?? "",
            /^Received: from client\.example \(localhost \[127\.0\.0\.1\]\)\r\n\tby mx\.test\.example \(Postwarden\) with SMTP id /,
          );
        } finally {
          await h.close();
        }
      });

      await t.step(
        "a client that stops reading after TLS is dropped after smtpd_timeout",
        async () => {
          const h = await serve(
            cert,
            "smtpd_tls_security_level = may\nsmtpd_timeout = 1s\nsmtpd_forbid_unauth_pipelining = no\n" +
              "smtpd_junk_command_limit = 1000000\n",
          );
          try {
            const c = await h.client();
            await c.reply();
            assertEquals(await c.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
            await c.startTls(cert.ca);
            // Replies never read, far more than the socket buffers hold: the
            // server's writes block (EHLO is no error, so no error limit ends
            // the session first; the junk command limit is lifted for it).
            const flood = "EHLO client.example\r\n".repeat(100_000);
            c.send(flood).catch(() => {}); // blocks too once the server stops reading
            const start = Date.now();
            while (!h.logs.some((l) => /^timeout after EHLO from localhost/.test(l))) {
              assert(Date.now() - start < 20_000, h.logs.join("\n"));
              await new Promise((r) => setTimeout(r, 100));
            }
            const ok = await h.client();
            assertMatch(await ok.reply(), /^220 /);
            assertEquals(await ok.cmd("QUIT"), "221 2.0.0 Bye");
          } finally {
            await h.close();
          }
        },
      );

      await t.step("a bad or stalled handshake ends the session, nothing else", async () => {
        const h = await serve(
          cert,
          "smtpd_tls_security_level = may\nsmtpd_starttls_timeout = 1s\n",
        );
        try {
          const bad = await h.client();
          await bad.reply();
          assertEquals(await bad.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
          await bad.send("\x16\x03\x01garbage that is no ClientHello\r\n\0\xff");
          assert(await bad.closed());
          const slow = await h.client();
          await slow.reply();
          assertEquals(await slow.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
          assert(await slow.closed()); // after smtpd_starttls_timeout
          const quiet = await h.client();
          await quiet.reply();
          assertEquals(await quiet.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
          await quiet.startTls(cert.ca);
          assertMatch(await quiet.cmd("EHLO client.example"), /^250-/);
          quiet.conn.close(); // goes away without QUIT, after TLS
          const gone = await h.client();
          await gone.reply();
          assertEquals(await gone.cmd("STARTTLS"), "220 2.0.0 Ready to start TLS");
          gone.conn.close(); // the client goes away before its ClientHello
          // The listener still serves.
          const ok = await h.client();
          assertMatch(await ok.reply(), /^220 /);
          assertEquals(await ok.cmd("QUIT"), "221 2.0.0 Bye");
          await new Promise((r) => setTimeout(r, 50));
          const text = h.logs.join("\n");
          // As Postfix logs them: why SSL_accept failed, then where.
          assertMatch(
            text,
            /SSL_accept error from localhost\[127\.0\.0\.1\]: -1\nwarning: TLS library problem: .*\nlost connection after STARTTLS from localhost\[127\.0\.0\.1\]\n/,
          );
          assertMatch(
            text,
            /SSL_accept error from localhost\[127\.0\.0\.1\]: Connection timed out\nlost connection after STARTTLS from localhost\[127\.0\.0\.1\]\n/,
          );
          assertMatch(
            text,
            /SSL_accept error from localhost\[127\.0\.0\.1\]: lost connection\nlost connection after STARTTLS from localhost\[127\.0\.0\.1\]\n/,
          );
          assertEquals(
            h.logs.filter((l) => / starttls=0\/1 commands=0\/1$/.test(l)).length,
            3,
            text,
          );
          assertMatch(text, /\nlost connection after EHLO from localhost\[127\.0\.0\.1\]\n/);
        } finally {
          await h.close();
        }
      });
    } finally {
      await Deno.remove(certDir, { recursive: true });
    }
  },
});

Deno.test("tls: AUTH before TLS only when smtpd_tls_auth_only and mandatory TLS allow it", () => {
  const policy = (main: string) =>
    smtpdTlsPolicy(makeConfig("/x", "compatibility_level = 3.6\n" + main)).policy;
  assertEquals(authAllowed(policy(""), false), true);
  assertEquals(authAllowed(policy("smtpd_tls_auth_only = yes\n"), false), false);
  assertEquals(authAllowed(policy("smtpd_tls_auth_only = yes\n"), true), true);
  assertEquals(authAllowed(policy("smtpd_tls_security_level = encrypt\n"), false), false);
  assertEquals(authAllowed(policy("smtpd_enforce_tls = yes\n"), false), false);
  const t = { protocol: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", bits: 128, algBits: 128 };
  const cfg = (main: string) => makeConfig("/x", "compatibility_level = 3.6\n" + main);
  for (
    const [main, before] of [
      ["", true],
      ["smtpd_tls_security_level = may\n", true],
      ["smtpd_tls_auth_only = yes\n", false],
      ["smtpd_tls_security_level = encrypt\n", false],
      ["smtpd_tls_security_level = verify\n", false],
      ["smtpd_enforce_tls = yes\n", false],
      ["smtpd_enforce_tls = yes\nsmtpd_tls_security_level = may\n", true],
      ["smtpd_tls_wrappermode = yes\n", false],
    ] as const
  ) {
    assertEquals(authAllowedNow(cfg(main), null), before, main);
    assertEquals(authAllowedNow(cfg(main), t), true, main);
  }
});

/*
 * smtpd_client_new_tls_session_rate_limit counts only new TLS sessions:
 * sessions on this harness (one process, so one session cache) with a
 * real anvil state behind lib/ipc, and openssl s_client -starttls smtp as
 * the client, which saves its session (-sess_out) and resumes it
 * (-sess_in). With the limit 1: a new session is served, the resumed one
 * too (not counted), the next new one goes over the limit (421 after the
 * handshake), and then STARTTLS is refused before the handshake (454).
 * TLSv1.2 and TLSv1.3 both resume. In wrapper mode the refusal comes
 * before the handshake: the connection is dropped, no handshake starts.
 */
/**
 * One s_client session: after the handshake NOOP, then QUIT once a reply
 * came (or the server ended); what it printed (stdout and stderr).
 */
async function sClient(
  port: number,
  version: string,
  sess: string[],
  wrapper = false,
): Promise<string> {
  const p = new Deno.Command("/usr/bin/openssl", {
    args: [
      "s_client",
      version,
      ...(wrapper ? [] : ["-starttls", "smtp"]),
      "-connect",
      `127.0.0.1:${port}`,
      "-crlf",
      "-quiet",
      ...sess,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    for await (const b of s.pipeThrough(new TextDecoderStream())) out += b;
  };
  const done = Promise.all([collect(p.stdout), collect(p.stderr)]);
  const w = p.stdin.getWriter();
  const end = Date.now() + 15_000;
  // The EHLO reply after the handshake ends with "250 CHUNKING" (or the server's 421 comes).
  const ready = wrapper ? /220 |421 |:error:/ : /250 CHUNKING|421 /;
  while (!ready.test(out) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await w.write(new TextEncoder().encode("NOOP\n")).catch(() => {});
  while (!/250 2\.0\.0 Ok|421 |454 |:error:/.test(out) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await w.write(new TextEncoder().encode("QUIT\n")).catch(() => {});
  await w.close().catch(() => {});
  const timer = setTimeout(() => p.kill(), Math.max(0, end - Date.now()));
  await p.status;
  clearTimeout(timer);
  await done;
  return out;
}

Deno.test({
  name: "tls rate: resumed sessions are not counted as new TLS sessions",
  sanitizeOps: false,
  sanitizeResources: false,
  ignore: !havePeer("/usr/bin/openssl"),
  fn: async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "smtpd-tls-rate-" });
    const cert = await makeTestCert(dir);
    const state = new AnvilState(60);
    const anvil = ipcListen(
      `${dir}/anvil`,
      (conn) => serveAnvil(state, conn, { now: () => 1000, warn: () => {} }),
    );
    const settings = limitSettings(
      makeConfig(
        "/x",
        "compatibility_level = 3.6\nmyhostname = mx.test.example\nmynetworks = 192.0.2.0/24\n" +
          "smtpd_client_new_tls_session_rate_limit = 1\n",
      ),
    );
    let service = 0;
    const h = await serve(cert, "smtpd_tls_security_level = may\n", () =>
      clientLimits(settings, {
        // A service per TLS version, so each starts from zero.
        service: `smtp${service}`,
        client: { name: "localhost", addr: "127.0.0.1" },
        open: () => ipcConnect(`${dir}/anvil`),
        warn: () => {},
      }));
    try {
      for (const version of ["-tls1_2", "-tls1_3"]) {
        service++;
        const sess = `${dir}/sess${version}`;
        await t.step(`${version}: new, resumed, new, refused`, async () => {
          const first = await sClient(h.port, version, ["-sess_out", sess]);
          assertMatch(first, /250 2\.0\.0 Ok/);
          const resumed = await sClient(h.port, version, ["-sess_in", sess]);
          assertMatch(resumed, /250 2\.0\.0 Ok/, "a resumed session is not counted");
          const second = await sClient(h.port, version, []);
          assertMatch(
            second,
            /421 4\.7\.0 mx\.test\.example Error: too many new TLS sessions from localhost\[127\.0\.0\.1\]/,
          );
          const c = await h.client();
          await c.reply();
          await c.cmd("EHLO client.example");
          assertEquals(
            await c.cmd("STARTTLS"),
            "454 4.7.0 Error: too many new TLS sessions from localhost[127.0.0.1]",
          );
        });
      }
      await t.step(
        "wrapper mode: new, new over the limit, refused before the handshake",
        async () => {
          const w = await serve(
            cert,
            "smtpd_tls_wrappermode = yes\n",
            () =>
              clientLimits(settings, {
                service: "smtps",
                client: { name: "localhost", addr: "127.0.0.1" },
                open: () => ipcConnect(`${dir}/anvil`),
                warn: () => {},
              }),
          );
          try {
            assertMatch(
              await sClient(w.port, "-tls1_3", [], true),
              /220 mx\.test\.example[^]*250 2\.0\.0 Ok/,
            );
            assertMatch(
              await sClient(w.port, "-tls1_3", [], true),
              /^421 4\.7\.0 mx\.test\.example Error: too many new TLS sessions from localhost\[127\.0\.0\.1\]/m,
            );
            const refused = await sClient(w.port, "-tls1_3", [], true);
            assert(!/220 /.test(refused), refused);
            assertEquals(
              w.logs.filter((l) => /^warning: (New TLS|Refusing)/.test(l)),
              [
                "warning: New TLS session rate limit exceeded: 2 from localhost[127.0.0.1] for service smtps",
                "warning: Refusing TLS service request from localhost[127.0.0.1] for service smtps",
              ],
            );
            assert(!w.logs.some((l) => /SSL_accept/.test(l)), "no handshake was started");
          } finally {
            await w.close();
          }
        },
      );
      await t.step("the warnings, as Postfix's", () => {
        const w = h.logs.filter((l) => /^warning: (New TLS|Refusing)/.test(l));
        assertEquals(w, [
          "warning: New TLS session rate limit exceeded: 2 from localhost[127.0.0.1] for service smtp1",
          "warning: Refusing STARTTLS request from localhost[127.0.0.1] for service smtp1",
          "warning: New TLS session rate limit exceeded: 2 from localhost[127.0.0.1] for service smtp2",
          "warning: Refusing STARTTLS request from localhost[127.0.0.1] for service smtp2",
        ]);
      });
    } finally {
      await h.close();
      anvil.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
