/**
 * The lmtp client against a real Dovecot LMTP server delivering into
 * Dovecot mailboxes (tests/helpers/dovecot_lmtp.ts), through a whole
 * Postwarden instance routed as the Dovecot guides set Postfix up:
 * `virtual_transport = lmtp:unix:...` for one domain and an
 * `lmtp:inet:[127.0.0.1]:port` relay_transport for another. One message
 * to four recipients: the one Dovecot knows is delivered (read back with
 * `doveadm fetch`), the unknown one bounces at RCPT, the one over quota
 * fails at its own end-of-data reply while the others are delivered; the
 * TCP one is delivered too. A destination only a lookup table names (not
 * granted to the daemon's sandbox) is deferred with a reason saying so.
 * Log lines are compared with the shape a live Postfix 3.7 lmtp logs.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { smtpReplies, startInstance } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { DOVECOT } from "../helpers/dovecot.ts";
import { DOVECOT_LMTP, startDovecotLmtp } from "../helpers/dovecot_lmtp.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The log line of one recipient. */
function lineOf(log: string, rcpt: string): string {
  const line = log.split("\n").find((l) => l.includes(` to=<${rcpt}>,`));
  assert(line, `no log line for ${rcpt} in:\n${log}`);
  return line;
}

Deno.test({
  name: "lmtp: Dovecot LMTP over unix and inet, per-recipient results, the sandbox's limits",
  ...opts,
  fn: async () => {
    if (!haveRoot("Dovecot LMTP") || !havePeer(DOVECOT) || !havePeer(DOVECOT_LMTP)) return;
    const dove = await startDovecotLmtp({ alice: "100M", bob: "1B", carol: "100M" });
    let inst;
    try {
      inst = await startInstance({
        mainCf: [
          "virtual_mailbox_domains = example.com, example.org, example.biz",
          `virtual_transport = lmtp:unix:${dove.socket}`,
          "relay_domains = example.net",
          `relay_transport = lmtp:inet:[127.0.0.1]:${dove.port}`,
          // Only a table names this one: the lmtp daemon's sandbox does not reach it.
          `transport_maps = inline:{example.org=lmtp:unix:${dove.dir}/elsewhere, ` +
          `example.biz=lmtp:inet:[127.0.0.2]:${dove.port}}`,
          "smtpd_reject_unlisted_recipient = no",
        ].join("\n"),
      });
      const replies = await smtpReplies(inst.port, [
        "EHLO client.test",
        "MAIL FROM:<sender@mx.test.example>",
        "RCPT TO:<alice@example.com>",
        "RCPT TO:<bob@example.com>",
        "RCPT TO:<nobody@example.com>",
        "RCPT TO:<carol@example.net>",
        "RCPT TO:<dave@example.org>",
        "RCPT TO:<erin@example.biz>",
        "DATA",
        "Subject: lmtp interop\r\n\r\nHello Dovecot.\r\n.",
        "QUIT",
      ]);
      assertMatch(replies.at(-2)!, /^250 /, replies.join("\n"));
      const log = await waitForLog(
        inst,
        (l) =>
          [
            "alice@example.com",
            "bob@example.com",
            "nobody@example.com",
            "carol@example.net",
            "dave@example.org",
            "erin@example.biz",
          ].every((r) => l.includes(` to=<${r}>,`)),
        60_000,
      );

      const relay = `mx.test.example[${dove.socket}]`;
      const alice = lineOf(log, "alice@example.com");
      assertMatch(alice, /postwarden\/lmtp\[\d+\]: [0-9A-F]+: to=<alice@example\.com>, /);
      assertStringIncludes(alice, `relay=${relay}, delay=`);
      assertMatch(alice, /dsn=2\.0\.0, status=sent \(250 2\.0\.0 <alice@example\.com> \S+ Saved\)/);

      const nobody = lineOf(log, "nobody@example.com");
      assertMatch(nobody, /dsn=5\.1\.1, status=bounced \(host mx\.test\.example\[/);
      assertMatch(
        nobody,
        /said: 550 5\.1\.1 <nobody@example\.com> User doesn't exist: nobody@example\.com \(in reply to RCPT TO command\)\)/,
      );

      const bob = lineOf(log, "bob@example.com");
      assertStringIncludes(bob, `relay=${relay}, `);
      // Dovecot's default (quota_full_tempfail = no): a permanent 552 at end of data.
      assertMatch(bob, /dsn=5\.2\.2, status=bounced \(host mx\.test\.example\[/);
      assertMatch(
        bob,
        /said: 552 5\.2\.2 <bob@example\.com> Quota exceeded \(mailbox for user is full\)/,
      );
      assertStringIncludes(bob, "(in reply to end of DATA command))");

      const carol = lineOf(log, "carol@example.net");
      assertStringIncludes(carol, `relay=127.0.0.1[127.0.0.1]:${dove.port}, `);
      assertMatch(carol, /status=sent \(250 2\.0\.0 <carol@example\.net> \S+ Saved\)/);

      const dave = lineOf(log, "dave@example.org");
      assertStringIncludes(
        dave,
        `relay=none, delay=`,
      );
      assertStringIncludes(
        dave,
        `dsn=4.4.1, status=deferred (connect to mx.test.example[${dove.dir}/elsewhere]: ` +
          "not permitted by this daemon's sandbox)",
      );

      assertStringIncludes(
        lineOf(log, "erin@example.biz"),
        `dsn=4.4.1, status=deferred (connect to 127.0.0.2[127.0.0.2]:${dove.port}: ` +
          "not permitted by this daemon's sandbox)",
      );

      // What Dovecot stored: alice and carol have the message, bob and nobody do not.
      const fetch = await dove.doveadm([
        "fetch",
        "-u",
        "alice",
        "hdr body",
        "mailbox",
        "INBOX",
        "all",
      ]);
      assertEquals(fetch.code, 0, fetch.stderr);
      assertStringIncludes(fetch.stdout, "Subject: lmtp interop");
      assertStringIncludes(fetch.stdout, "Hello Dovecot.");
      assertStringIncludes(fetch.stdout, "Return-Path: <sender@mx.test.example>");
      const count = async (user: string) => {
        const r = await dove.doveadm(["search", "-u", user, "mailbox", "INBOX", "all"]);
        assertEquals(r.code, 0, r.stderr);
        return r.stdout.trim().split("\n").filter(Boolean).length;
      };
      assertEquals(await count("alice"), 1);
      assertEquals(await count("carol"), 1);
      assertEquals(await count("bob"), 0);
    } finally {
      await inst?.stop();
      await dove.stop();
    }
  },
});

Deno.test({
  name: "lmtp: mailbox_transport hands local mailboxes to Dovecot after alias expansion",
  ...opts,
  fn: async () => {
    if (!haveRoot("Dovecot LMTP") || !havePeer(DOVECOT) || !havePeer(DOVECOT_LMTP)) return;
    // As the Dovecot guides set it up: Dovecot's socket in the MTA's private/ folder.
    const inst = await startInstance({
      mainCf: [
        "mailbox_transport = lmtp:unix:private/dovecot-lmtp",
        "alias_maps = inline:{postmaster=alice}",
      ].join("\n"),
    });
    let dove;
    try {
      dove = await startDovecotLmtp({ alice: "100M" }, {
        socket: `${inst.queue}/private/dovecot-lmtp`,
      });
      const replies = await smtpReplies(inst.port, [
        "EHLO client.test",
        "MAIL FROM:<sender@example.com>",
        "RCPT TO:<alice@mx.test.example>",
        "RCPT TO:<postmaster@mx.test.example>",
        "RCPT TO:<nobody@mx.test.example>",
        "DATA",
        "Subject: via local\r\n\r\nHello through local.\r\n.",
        "QUIT",
      ]);
      assertMatch(replies.at(-2)!, /^250 /, replies.join("\n"));
      const log = await waitForLog(
        inst,
        (l) =>
          l.includes("to=<alice@mx.test.example>, relay=") &&
          l.includes("orig_to=<postmaster@mx.test.example>") &&
          l.includes("to=<nobody@mx.test.example>,"),
        60_000,
      );
      // The path as configured, relative to queue_directory, as Postfix logs it.
      const relay = "relay=mx.test.example[private/dovecot-lmtp]";
      // The lmtp agent logs the deliveries local hands it, as Postfix's lmtp does; local does not.
      const lines = log.split("\n").filter((l) => / to=<(alice|nobody)@mx\.test\.example>/.test(l));
      assert(lines.every((l) => / postwarden\/lmtp\[\d+\]: /.test(l)), lines.join("\n"));
      const direct = lines.find((l) => l.includes("to=<alice@mx.test.example>, relay="));
      assertStringIncludes(direct!, `${relay}, `);
      assertMatch(direct!, /status=sent \(250 2\.0\.0 <alice@mx\.test\.example> \S+ Saved\)/);
      const aliased = lines.find((l) => l.includes("orig_to=<postmaster@mx.test.example>"));
      assertStringIncludes(
        aliased!,
        `to=<alice@mx.test.example>, orig_to=<postmaster@mx.test.example>, ${relay}, `,
      );
      assertMatch(aliased!, /status=sent/);
      const nobody = lines.find((l) => l.includes("to=<nobody@mx.test.example>"));
      assertMatch(nobody!, /dsn=5\.1\.1, status=bounced .*User doesn't exist/);

      const r = await dove.doveadm(["search", "-u", "alice", "mailbox", "INBOX", "all"]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stdout.trim().split("\n").length, 2, r.stdout);
    } finally {
      await dove?.stop();
      await inst.stop();
    }
  },
});
