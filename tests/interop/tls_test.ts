/**
 * smtpd's TLS against real peers, with a throwaway certificate made by
 * openssl at test time:
 * - swaks --tls (STARTTLS) and swaks --tls-on-connect (a master.cf service
 *   with `-o smtpd_tls_wrappermode=yes`) deliver through a Postwarden
 *   instance; the Received: header carries Postfix's TLS clause;
 * - openssl s_client -starttls smtp and posttls-finger see the certificate
 *   (its subject) and a TLSv1.2+ session;
 * - differential against a real Postfix 3.7 with the same TLS settings:
 *   the replies before, during and after STARTTLS with levels may, encrypt
 *   and none (530 5.7.0 before STARTTLS, 501 with an argument, 554 when
 *   TLS is active, 502 without TLS, 454 without a certificate), plaintext
 *   pipelined after STARTTLS (discarded, as Postfix, which logs nothing
 *   for it after EHLO), and the "TLS connection established" log line.
 *
 * Known difference, by design: without a usable certificate Postfix still
 * advertises STARTTLS (and answers 454); Postwarden does not advertise it.
 *
 * Without a peer (or root, for Postfix) a test is skipped loudly; under
 * CI=true it fails instead.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { onBoth } from "../helpers/differential.ts";
import { havePeer, haveRoot, run } from "../helpers/peers.ts";
import { comparableReplies, freePort, maildirFiles, waitUntil } from "../helpers/instance.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { playScript, type Step } from "../helpers/smtp_script.ts";
import { makeTestCert, type TestCert } from "../helpers/tls.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * A TLS-capable session: commands, "<TLS>" to start TLS, "<RAW>text" to
 * send text as is; the last line of each reply. A missing reply throws.
 */
async function tlsReplies(port: number, ca: string, script: string[]): Promise<string[]> {
  const steps: Step[] = script.map((s) =>
    s === "<TLS>" ? { startTls: ca } : s.startsWith("<RAW>") ? { raw: s.slice(5), replies: 1 } : s
  );
  const results = await playScript("127.0.0.1", port, steps, { strict: true, encoding: "utf-8" });
  return results.flatMap((r) => r.replies.map((lines) => lines.at(-1)!));
}

/** Commands as comparableReplies wants them (markers dropped). */
const commandsOf = (script: string[]) =>
  script.filter((s) => s !== "<TLS>").map((s) => s.replace(/^<RAW>/, "").split("\r\n")[0]);

async function withCert<T>(f: (cert: TestCert) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "tls-interop-" });
  await Deno.chmod(dir, 0o755); // Postfix's and Postwarden's master read the key as root
  try {
    return await f(await makeTestCert(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const tlsMainCf = (cert: TestCert, level: string) =>
  [
    `smtpd_tls_security_level = ${level}`,
    `smtpd_tls_cert_file = ${cert.certFile}`,
    `smtpd_tls_key_file = ${cert.keyFile}`,
    "smtpd_tls_received_header = yes",
    "smtpd_tls_loglevel = 1",
  ].join("\n");

Deno.test({
  name: "tls interop: swaks, openssl s_client and posttls-finger against Postwarden",
  ...opts,
  fn: async (t) => {
    for (const p of ["/usr/bin/swaks", "/usr/bin/openssl", "/usr/sbin/posttls-finger"]) {
      if (!havePeer(p)) return;
    }
    const { startInstance } = await import("../helpers/instance.ts");
    await withCert(async (cert) => {
      const smtps = freePort();
      const pw = await startInstance({ mainCf: tlsMainCf(cert, "may") });
      try {
        await t.step("swaks --tls delivers; Received: has the TLS clause", async () => {
          const r = await run("swaks", [
            "--server",
            `127.0.0.1:${pw.port}`,
            "--from",
            "alice@example.com",
            "--to",
            "root@localhost",
            "--ehlo",
            "client.example",
            "--tls",
            "--header",
            "Subject: over STARTTLS",
          ], { timeoutMs: 60_000 });
          assertEquals(r.code, 0, r.stdout + r.stderr);
          assertMatch(r.stdout, /TLS started with cipher TLSv1\.[23]:/);
          await waitUntil(
            async () => (await maildirFiles(pw.spool, "root")).length >= 1,
            30_000,
            "delivery",
          );
          const files = await maildirFiles(pw.spool, "root");
          const text = await Deno.readTextFile(files[0]);
          assertMatch(
            text,
            /Received: from client\.example \(localhost \[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)\)\n\t\(No client certificate requested\)\n\tby mx\.test\.example \(Postwarden\) with ESMTPS id /,
          );
          // The log reaches the file through master: wait for the line.
          const established = /smtpd\[\d+\]: Anonymous TLS connection established from/;
          assertMatch(
            await waitForLog(pw, established, 10_000),
            /smtpd\[\d+\]: Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)/,
          );
        });

        await t.step("openssl s_client -starttls smtp sees the certificate", async () => {
          const r = await run("openssl", [
            "s_client",
            "-starttls",
            "smtp",
            "-connect",
            `127.0.0.1:${pw.port}`,
            "-CAfile",
            cert.caFile,
            "-verify_hostname",
            "mx.test.example",
            "-verify_return_error",
          ], { stdin: "QUIT\r\n", timeoutMs: 30_000 });
          assertMatch(r.stdout, /subject=\s*\/?CN\s*=\s*mx\.test\.example/);
          assertMatch(r.stdout, /Verify return code: 0 \(ok\)/);
          assertMatch(r.stdout, /Protocol\s*:\s*TLSv1\.[23]|New, TLSv1\.[23], Cipher is/);
        });

        await t.step("posttls-finger sees a TLS session and the certificate", async () => {
          // posttls-finger reads main.cf from $MAIL_CONFIG (an empty one here).
          const conf = await Deno.makeTempDir({ prefix: "posttls-finger-" });
          await Deno.writeTextFile(`${conf}/main.cf`, "");
          const r = await run("/usr/bin/env", [
            `MAIL_CONFIG=${conf}`,
            "posttls-finger",
            "-c",
            "-C",
            "-l",
            "may",
            `[127.0.0.1]:${pw.port}`,
          ], { timeoutMs: 30_000 }).finally(() => Deno.remove(conf, { recursive: true }));
          const out = r.stdout + r.stderr;
          assertMatch(
            out,
            /TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: TLSv1\.[23] with cipher/,
          );
          const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(out);
          assert(pem, out);
          const x = await run("openssl", ["x509", "-noout", "-subject"], { stdin: pem[0] + "\n" });
          assertMatch(x.stdout, /CN\s*=\s*mx\.test\.example/);
        });

        // The wrapper-mode service is added to the running instance's master.cf,
        // then started with a reload, as an admin would. (Last: the daemons
        // that drain after a reload may lose log lines, which the steps
        // above check.)
        const masterCf = (await Deno.readTextFile(`${pw.conf}/master.cf`)) +
          `127.0.0.1:${smtps} inet n - n - - smtpd\n  -o smtpd_tls_wrappermode=yes\n`;
        await Deno.writeTextFile(`${pw.conf}/master.cf`, masterCf);
        const reload = await run(Deno.execPath(), [
          "run",
          "-A",
          new URL("../../commands/postwarden.ts", import.meta.url).pathname,
          "-c",
          pw.conf,
          "reload",
        ]);
        assertEquals(reload.code, 0, reload.stderr);
        await waitUntil(
          async () => {
            try {
              (await Deno.connect({ hostname: "127.0.0.1", port: smtps })).close();
              return true;
            } catch {
              return false;
            }
          },
          30_000,
          "the smtps service",
        );

        await t.step(
          "swaks --tls-on-connect delivers through the wrapper-mode service",
          async () => {
            const r = await run("swaks", [
              "--server",
              `127.0.0.1:${smtps}`,
              "--from",
              "alice@example.com",
              "--to",
              "root@localhost",
              "--tls-on-connect",
              "--header",
              "Subject: over smtps",
            ], { timeoutMs: 60_000 });
            assertEquals(r.code, 0, r.stdout + r.stderr);
            assert(!/STARTTLS/.test(r.stdout), "no STARTTLS in wrapper mode");
            await waitUntil(
              async () => (await maildirFiles(pw.spool, "root")).length >= 2,
              30_000,
              "delivery",
            );
            const files = await maildirFiles(pw.spool, "root");
            const texts = await Promise.all(files.map((f) => Deno.readTextFile(f)));
            const mail = texts.find((m) => m.includes("Subject: over smtps")) ?? texts.join("\n");
            assertMatch(
              mail,
              /\(using TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)\)\n\t\(No client certificate requested\)\n\tby mx\.test\.example \(Postwarden\) with ESMTPS id /,
            );
          },
        );
      } finally {
        await pw.stop();
      }
    });
  },
});

interface Case {
  name: string;
  level: string;
  /** false: no certificate configured. */
  cert: boolean;
  script: string[];
}

const CASES: Case[] = [
  {
    name: "may: STARTTLS with an argument, in a transaction, twice; the session starts over",
    level: "may",
    cert: true,
    script: [
      "EHLO client.example",
      "STARTTLS now",
      "MAIL FROM:<a@example.com>",
      "STARTTLS",
      "<TLS>",
      "RCPT TO:<root@localhost>",
      "STARTTLS",
      "EHLO client.example",
      "MAIL FROM:<a@example.com>",
      "RCPT TO:<root@localhost>",
      "RSET",
      "QUIT",
    ],
  },
  {
    name: "encrypt: 530 5.7.0 before STARTTLS",
    level: "encrypt",
    cert: true,
    script: [
      "HELO client.example",
      "MAIL FROM:<a@example.com>",
      "RCPT TO:<root@localhost>",
      "DATA",
      "RSET",
      "VRFY root",
      "ETRN example.com",
      "AUTH PLAIN AGZvbwBiYXI=",
      "NOOP",
      "BOGUS",
      "EHLO client.example",
      "STARTTLS x",
      "STARTTLS",
      "<TLS>",
      "MAIL FROM:<a@example.com>",
      "RCPT TO:<root@localhost>",
      "QUIT",
    ],
  },
  {
    name: "plaintext pipelined after STARTTLS is discarded",
    level: "may",
    cert: true,
    script: ["EHLO client.example", "<RAW>STARTTLS\r\nRSET\r\n", "<TLS>", "NOOP", "QUIT"],
  },
  {
    name: "none: STARTTLS is not implemented",
    level: "none",
    cert: true,
    script: ["EHLO client.example", "STARTTLS", "STARTTLS x", "QUIT"],
  },
  {
    name: "may without a certificate: 454",
    level: "may",
    cert: false,
    script: ["HELO client.example", "STARTTLS", "MAIL FROM:<a@example.com>", "QUIT"],
  },
];

/** Log lines both servers must write alike. */
function tlsLogLines(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    const m =
      /smtpd\[\d+\]: (improper command pipelining .*|Anonymous TLS connection established from [^:]+: TLSv1\.\d with cipher \S+ \(\d+\/\d+ bits\))/
        .exec(l);
    return m ? [m[1]] : [];
  });
}

Deno.test({
  name: "tls interop: the same replies as Postfix before, at and after STARTTLS",
  ...opts,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !havePeer("/usr/bin/openssl") || !haveRoot("a real Postfix")) return;
    await withCert(async (cert) => {
      for (const c of CASES) {
        const mainCf = [
          "myhostname = mx.test.example",
          "mydestination = $myhostname, localhost",
          "smtpd_error_sleep_time = 0",
          // Postfix 3.9's default (Postwarden's): pipelined plaintext after STARTTLS is
          // still discarded by the STARTTLS code, not refused as improper pipelining.
          "smtpd_forbid_unauth_pipelining = yes",
          c.cert ? tlsMainCf(cert, c.level) : `smtpd_tls_security_level = ${c.level}`,
        ].join("\n");
        const { theirs: [theirs, theirLog], ours: [ours, ourLog] } = await onBoth(
          mainCf,
          async (server) =>
            [
              await tlsReplies(server.port, cert.ca, c.script),
              await waitForLog(server, "quit=1", 10_000),
            ] as const,
          { label: c.name },
        );
        await t.step(c.name, () => {
          const cmds = commandsOf(c.script);
          assertEquals(comparableReplies(cmds, ours), comparableReplies(cmds, theirs));
          // Postfix adds the key exchange to its line; the part up to the bits is the same.
          assertEquals(tlsLogLines(ourLog), tlsLogLines(theirLog));
        });
      }
    });
  },
});
