/**
 * SMTP AUTH against real peers: swaks (--auth PLAIN and --auth LOGIN)
 * talks to a Postwarden instance from 127.0.0.2, outside mynetworks
 * (127.0.0.1/32), once with smtpd_sasl_type = dovecot and a real Dovecot
 * (its auth socket), once with smtpd_sasl_type = passwd-file and the auth
 * daemon (SHA512-CRYPT, BLF-CRYPT and ARGON2ID hashes made by doveadm pw).
 * After AUTH the client relays; without it, 554 5.7.1 Relay access
 * denied; a wrong password gets 535 5.7.8. Then the same scripted AUTH
 * dialog (bad mechanism, bad base64, "=" and "*", AUTH in a transaction
 * and twice) goes to Postwarden and to a real Postfix 3.7 with the same
 * Dovecot, and every reply must be the same, and so must the SASL
 * warnings. For passwd-file, `postwarden audit` must show that the auth
 * daemon alone can read the password file.
 *
 * Without Dovecot, swaks, Postfix or root the test is skipped loudly;
 * under CI=true it fails instead.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { havePeer, haveRoot, run } from "../helpers/peers.ts";
import { auditSections, type Instance, smtpReplies, startInstance } from "../helpers/instance.ts";
import { countLines, waitForLog } from "../helpers/maillog.ts";
import { DOVEADM, DOVECOT, startDovecot } from "../helpers/dovecot.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";

const SWAKS = "/usr/bin/swaks";
const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const opts = { sanitizeOps: false, sanitizeResources: false };

const COMMON = [
  "mynetworks = 127.0.0.1/32",
  "smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, " +
  "reject_unauth_destination",
  "smtpd_sasl_auth_enable = yes",
  "smtpd_error_sleep_time = 0",
  "smtpd_soft_error_limit = 100",
  "smtpd_hard_error_limit = 100",
  "smtpd_sender_login_maps = inline:{alice@example.org=alice, bob@example.org=bob}",
  "smtpd_sender_restrictions = reject_known_sender_login_mismatch",
];

function peersPresent(): boolean {
  return haveRoot("sasl_test") && havePeer(DOVECOT) && havePeer(DOVEADM) && havePeer(SWAKS);
}

/** One swaks session from 127.0.0.2: its transcript and exit code. */
async function swaks(port: number, args: string[]): Promise<{ code: number; text: string }> {
  const r = await run(SWAKS, [
    "-s",
    `127.0.0.1:${port}`,
    "--li",
    "127.0.0.2",
    "--ehlo",
    "client.test.example",
    "--from",
    "sender@example.org",
    "--to",
    "someone@example.com",
    "--timeout",
    "30",
    ...args,
  ], { timeoutMs: 60_000 });
  return { code: r.code, text: r.stdout + r.stderr };
}

/** The relay checks every backend must pass. */
async function relayChecks(
  t: Deno.TestContext,
  inst: Instance,
  users: Record<string, string>,
): Promise<void> {
  for (const [user, password] of Object.entries(users)) {
    for (const mech of ["PLAIN", "LOGIN"]) {
      await t.step(`${user}: --auth ${mech} relays`, async () => {
        const r = await swaks(inst.port, ["--auth", mech, "--au", user, "--ap", password]);
        assertStringIncludes(r.text, "235 2.7.0 Authentication successful");
        assertMatch(r.text, /250 2\.0\.0 Ok: queued as \w+/);
        assertEquals(r.code, 0, r.text);
      });
    }
  }
  await t.step("without AUTH: 554 5.7.1 Relay access denied", async () => {
    const r = await swaks(inst.port, []);
    assertStringIncludes(r.text, "554 5.7.1 <someone@example.com>: Relay access denied");
  });
  await t.step("wrong password: 535 5.7.8, logged as Postfix does", async () => {
    const user = Object.keys(users)[0];
    for (const mech of ["PLAIN", "LOGIN"]) {
      const r = await swaks(inst.port, ["--auth", mech, "--au", user, "--ap", "wrong"]);
      assertStringIncludes(r.text, "535 5.7.8 Error: authentication failed: (reason unavailable)");
    }
    const failed = new RegExp(
      `smtpd\\[\\d+\\]: warning: \\S+\\[127\\.0\\.0\\.2\\]: SASL PLAIN authentication ` +
        `failed: \\(reason unavailable\\), sasl_username=${user}\\n`,
    );
    assertMatch(await waitForLog(inst, failed), failed);
  });
  await t.step("the queued message says who sent it", async () => {
    const client = /: client=\S+\[127\.0\.0\.2\], sasl_method=PLAIN, sasl_username=\w+\n/;
    assertMatch(await waitForLog(inst, client), client);
  });
}

/** AUTH replies that must match Postfix's. */
const DIALOG = [
  "EHLO client.test.example",
  "AUTH",
  "AUTH FOO",
  "AUTH PLAIN !!!",
  "AUTH PLAIN =",
  "AUTH LOGIN",
  "*",
  "AUTH LOGIN =",
  "not base64",
  "AUTH PLAIN",
  "AGFsaWNlAHdyb25n",
  "AUTH LOGIN YWxpY2U=",
  "c2VjcmV0",
  "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
  "MAIL FROM:<a@example.org> AUTH=<alice@example.org>",
  "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
  "RSET",
  "MAIL FROM:<bob@example.org>",
  "RCPT TO:<x@example.com>",
  "RSET",
  "QUIT",
];

/** Sender login checks without AUTH, compared too. */
const DIALOG_NO_AUTH = [
  "EHLO client.test.example",
  "MAIL FROM:<alice@example.org>",
  "RCPT TO:<x@example.com>",
  "RSET",
  "MAIL FROM:<carol@example.org>",
  "RCPT TO:<x@example.com>",
  "QUIT",
];

/** check_sasl_access: the login name is the key, whole (alice@example.org would not match). */
const SASL_ACCESS = "smtpd_sender_restrictions = check_sasl_access " +
  "inline:{ {alice=REJECT no mail from alice}, {bob@example.org=REJECT not this key} }";
const DIALOG_SASL_ACCESS = [
  "EHLO client.test.example",
  "MAIL FROM:<alice@example.org>",
  "RCPT TO:<x@example.com>",
  "RSET",
  "AUTH PLAIN AGFsaWNlAHNlY3JldA==",
  "MAIL FROM:<alice@example.org>",
  "RCPT TO:<x@example.com>",
  "QUIT",
];

/** The smtpd reject lines of a log, without queue id, client port or pid. */
function rejects(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    const m = /smtpd\[\d+\]: \w+: (reject: .*localhost\[127\.0\.0\.1\].*)$/.exec(l);
    return m ? [m[1]] : [];
  });
}

/** The smtpd SASL warnings of a log, without client port or pid. */
function saslWarnings(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    const m = /smtpd\[\d+\]: (warning: .*SASL.*)$/.exec(l);
    return m ? [m[1]] : [];
  });
}

Deno.test({
  name: "AUTH with Dovecot: swaks relays after AUTH; replies as Postfix's",
  ...opts,
  fn: async (t) => {
    if (!peersPresent()) return;
    const users = { alice: "secret", bob: "p@ss w0rd" };
    const dovecot = await startDovecot(users);
    let inst: Instance | undefined;
    try {
      inst = await startInstance({
        mainCf: [...COMMON, "smtpd_sasl_type = dovecot", `smtpd_sasl_path = ${dovecot.socket}`]
          .join("\n"),
      });
      await relayChecks(t, inst, users);
      const i = inst;
      await t.step("the AUTH dialog is answered as Postfix answers it", async () => {
        if (!havePeer(POSTFIX)) return;
        const pf = await startPostfix({
          mainCf: [
            ...COMMON,
            "smtpd_sasl_type = dovecot",
            `smtpd_sasl_path = inet:127.0.0.1:${dovecot.port}`,
          ].join("\n"),
        });
        try {
          for (const dialog of [DIALOG, DIALOG_NO_AUTH]) {
            const ours = await smtpReplies(i.port, dialog);
            const theirs = await smtpReplies(pf.port, dialog);
            const show = (r: string[]) => r.slice(2).map((x, n) => `${dialog[n + 1]} -> ${x}`);
            assertEquals(show(ours), show(theirs));
          }
          // Both dialogs' ends (the readiness probe's disconnect has no quit=1).
          const ended = (log: string) => countLines(log, /disconnect from localhost.* quit=1/) >= 2;
          await waitForLog(pf, ended);
          await waitForLog(i, ended);
          const warned = (log: string) =>
            saslWarnings(
              log.split("\n").filter((l) => l.includes("localhost[127.0.0.1]")).join("\n"),
            );
          assertEquals(warned(await i.log()), warned(await pf.log()));
          const refused = rejects(await i.log());
          assertEquals(refused, rejects(await pf.log()));
          assertEquals(refused.length, 2, refused.join("\n"));
        } finally {
          await pf.stop();
        }
      });
      await t.step("check_sasl_access is answered as Postfix answers it", async () => {
        if (!havePeer(POSTFIX)) return;
        const mainCf = [...COMMON, SASL_ACCESS, "smtpd_sasl_type = dovecot"];
        const pf = await startPostfix({
          mainCf: [...mainCf, `smtpd_sasl_path = inet:127.0.0.1:${dovecot.port}`].join("\n"),
        });
        const pw = await startInstance({
          mainCf: [...mainCf, `smtpd_sasl_path = ${dovecot.socket}`].join("\n"),
        });
        try {
          const ours = await smtpReplies(pw.port, DIALOG_SASL_ACCESS);
          const theirs = await smtpReplies(pf.port, DIALOG_SASL_ACCESS);
          assert(
            theirs.includes("554 5.7.1 <alice>: SASL login name rejected: no mail from alice"),
            theirs.join("\n"),
          );
          assertEquals(ours.slice(2), theirs.slice(2));
          // The dialog's end (the readiness probe's disconnect has no quit=1).
          const ended = /disconnect from localhost.* quit=1/;
          await waitForLog(pf, ended);
          await waitForLog(pw, ended);
          assertEquals(rejects(await pw.log()), rejects(await pf.log()));
        } finally {
          await pw.stop();
          await pf.stop();
        }
      });
      await t.step("smtpd_sasl_path = inet:host:port: the sandbox grants that port", async () => {
        const viaInet = await startInstance({
          mainCf: [
            ...COMMON,
            "smtpd_sasl_type = dovecot",
            `smtpd_sasl_path = inet:127.0.0.1:${dovecot.port}`,
          ].join("\n"),
        });
        try {
          const r = await swaks(viaInet.port, [
            "--auth",
            "PLAIN",
            "--au",
            "bob",
            "--ap",
            "p@ss w0rd",
          ]);
          assertStringIncludes(r.text, "235 2.7.0 Authentication successful");
        } finally {
          await viaInet.stop();
        }
      });
    } finally {
      await inst?.stop();
      await dovecot.stop();
    }
  },
});

Deno.test({
  name: "AUTH with passwd-file: the auth daemon verifies, smtpd cannot read the file",
  ...opts,
  fn: async (t) => {
    if (!peersPresent()) return;
    const users: Record<string, [string, string]> = {
      sha: ["SHA512-CRYPT", "secret one"],
      blf: ["BLF-CRYPT", "secret two"],
      argon: ["ARGON2ID", "secret three"],
    };
    const dir = await Deno.makeTempDir({ prefix: "sasl-passwd-" });
    await Deno.chmod(dir, 0o755);
    const file = `${dir}/passwd`;
    const lines = ["# Dovecot passwd-file", "plain:{PLAIN}secret::::", "broken line"];
    for (const [user, [scheme, password]] of Object.entries(users)) {
      const h = await run(DOVEADM, ["pw", "-s", scheme, "-p", password]);
      assertEquals(h.code, 0, h.stderr);
      lines.push(`${user}:${h.stdout.trim()}:1000:1000::/home/${user}::`);
    }
    await Deno.writeTextFile(file, lines.join("\n") + "\n", { mode: 0o644 });
    const master = (await Deno.readTextFile(`${ROOT}/conf/master.cf`)) +
      "auth      unix  -       -       n       -       -       auth\n";
    let inst: Instance | undefined;
    try {
      inst = await startInstance({
        mainCf: [...COMMON, "smtpd_sasl_type = passwd-file", `smtpd_sasl_path = ${file}`]
          .join("\n"),
        masterCf: master,
      });
      const i = inst;
      await relayChecks(
        t,
        i,
        Object.fromEntries(Object.entries(users).map(([u, [, p]]) => [u, p])),
      );
      await t.step("{PLAIN} and malformed lines are refused with a warning", async () => {
        const r = await swaks(i.port, ["--auth", "PLAIN", "--au", "plain", "--ap", "secret"]);
        assertStringIncludes(r.text, "535 5.7.8");
        const log = await waitForLog(i, /auth\[\d+\]: warning: .*line 3: malformed line/);
        assertMatch(log, /auth\[\d+\]: warning: .*line 2: user plain: scheme \{PLAIN\} stores/);
        assertMatch(log, /auth\[\d+\]: warning: .*line 3: malformed line/);
      });
      await t.step("postwarden audit: only the auth daemon reads the password file", async () => {
        const { sections, output } = await auditSections(i);
        const line = (svc: string) =>
          (sections.get(svc) ?? []).find((l) => l.includes(`read password file ${file}`)) ??
            `(${svc}: no line)\n${output}`;
        assertMatch(line("auth"), /^\s+can /);
        for (const svc of ["smtpd", "cleanup", "qmgr", "local", "smtp"]) {
          assertMatch(line(svc), /^\s+cannot /, svc);
        }
        const pkg = (svc: string) =>
          (sections.get(svc) ?? []).find((l) =>
            l.includes("load the auth daemon's package bcryptjs")
          ) ??
            `(${svc}: no line)`;
        assertMatch(pkg("auth"), /^\s+can /);
        assertMatch(pkg("smtpd"), /^\s+cannot /);
        assertMatch(
          (sections.get("auth") ?? []).find((l) => l.includes("import code from npm")) ?? "",
          /^\s+cannot /,
        );
      });
    } finally {
      await inst?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// Keeps the helper honest: the dialog must exercise a failure and a success.
assert(DIALOG.includes("*") && DIALOG.some((c) => c.startsWith("AUTH PLAIN AG")));

Deno.test({
  name: "AUTH after STARTTLS with an openssl passwd -6 hash (smtpd_tls_auth_only = yes)",
  ...opts,
  fn: async (t) => {
    if (!peersPresent() || !havePeer("/usr/bin/openssl")) return;
    const { makeTestCert } = await import("../helpers/tls.ts");
    const dir = await Deno.makeTempDir({ prefix: "sasl-tls-" });
    await Deno.chmod(dir, 0o755);
    const cert = await makeTestCert(dir);
    const hash = await run("/usr/bin/openssl", ["passwd", "-6", "s3cret pass"]);
    assertEquals(hash.code, 0, hash.stderr);
    const file = `${dir}/passwd`;
    await Deno.writeTextFile(file, `carol:{SHA512-CRYPT}${hash.stdout.trim()}\n`, { mode: 0o644 });
    const master = (await Deno.readTextFile(`${ROOT}/conf/master.cf`)) +
      "auth      unix  -       -       n       -       -       auth\n";
    let inst: Instance | undefined;
    try {
      inst = await startInstance({
        mainCf: [
          ...COMMON,
          "smtpd_sasl_type = passwd-file",
          `smtpd_sasl_path = ${file}`,
          "smtpd_tls_security_level = may",
          `smtpd_tls_cert_file = ${cert.certFile}`,
          `smtpd_tls_key_file = ${cert.keyFile}`,
          "smtpd_tls_auth_only = yes",
        ].join("\n"),
        masterCf: master,
      });
      const port = inst.port;
      await t.step("no AUTH before STARTTLS; AUTH after it", async () => {
        const plain = await swaks(port, ["--quit-after", "EHLO"]);
        assertStringIncludes(plain.text, "250-STARTTLS");
        assert(!/250[- ]AUTH/.test(plain.text), plain.text);
        const tls = await swaks(port, ["--tls", "--quit-after", "EHLO"]);
        assertMatch(tls.text, /250[- ]AUTH PLAIN LOGIN/);
      });
      for (const mech of ["PLAIN", "LOGIN"]) {
        await t.step(`swaks --tls --auth ${mech} relays from outside mynetworks`, async () => {
          const r = await swaks(port, [
            "--tls",
            "--auth",
            mech,
            "--au",
            "carol",
            "--ap",
            "s3cret pass",
          ]);
          assertStringIncludes(r.text, "235 2.7.0 Authentication successful");
          assertMatch(r.text, /250 2\.0\.0 Ok: queued as \w+/);
          assertEquals(r.code, 0, r.text);
        });
      }
      await t.step("a wrong password gets 535 5.7.8; no AUTH gets 554 5.7.1", async () => {
        const bad = await swaks(port, [
          "--tls",
          "--auth",
          "PLAIN",
          "--au",
          "carol",
          "--ap",
          "nope",
        ]);
        assertStringIncludes(bad.text, "535 5.7.8 Error: authentication failed");
        const none = await swaks(port, ["--tls"]);
        assertStringIncludes(none.text, "554 5.7.1 <someone@example.com>: Relay access denied");
      });
      await t.step("the client= log line names the SASL login", async () => {
        const client = /client=\S+\[127\.0\.0\.2\], sasl_method=(PLAIN|LOGIN), sasl_username=carol/;
        assertMatch(await waitForLog(inst!, client), client);
      });
    } finally {
      await inst?.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
