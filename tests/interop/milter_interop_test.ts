/**
 * smtpd_milters with the real milters admins run (tests/helpers/milter_peers.ts),
 * through a whole instance:
 * - OpenDKIM signs mail from a local client; the delivered message verifies
 *   with mailauth's verifier (npm) against the key's TXT record, and with
 *   OpenDKIM's own when the message comes back from an outside client
 *   (XCLIENT), which adds `Authentication-Results: ... dkim=pass`.
 * - rspamd's milter refuses GTUBE and adds its headers to other mail.
 * - clamav-milter refuses EICAR and passes clean mail.
 * - A milter that dies mid-session: the next message gets 451 (the client
 *   keeps it), nothing acknowledged is lost.
 */
import { dkimVerify } from "mailauth";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { maildirFiles, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import {
  EICAR,
  GTUBE,
  startClamavMilter,
  startOpenDkim,
  startRspamd,
} from "../helpers/milter_peers.ts";
import { playScript } from "../helpers/smtp_script.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The delivered message whose Subject is `subject`, from a maildir. */
async function delivered(spool: string, user: string, subject: string): Promise<string | null> {
  for (const f of await maildirFiles(spool, user)) {
    const text = await Deno.readTextFile(f);
    if (text.includes(`\nSubject: ${subject}\n`)) return text;
  }
  return null;
}

async function waitDelivered(spool: string, user: string, subject: string): Promise<string> {
  await waitUntil(async () => (await delivered(spool, user, subject)) !== null, 15_000, subject);
  return (await delivered(spool, user, subject))!;
}

/** The message as sent on: local delivery's own header lines dropped, CRLF line ends. */
function asSent(text: string): string {
  return text.replace(/^(Return-Path|X-Original-To|Delivered-To): [^\n]*\n/gm, "")
    .replace(/\r?\n/g, "\r\n");
}

Deno.test({
  name: "milter interop: OpenDKIM signs, mailauth and OpenDKIM verify",
  ...opts,
  fn: async () => {
    const dkim = await startOpenDkim({ domain: "example.com", selector: "pw", mode: "sv" });
    if (!dkim) return;
    const inst = await startInstance({
      mainCf: [
        `smtpd_milters = ${dkim.milter}`,
        "smtpd_authorized_xclient_hosts = 127.0.0.0/8",
      ].join("\n"),
    });
    try {
      const body = "Subject: signed\r\nFrom: Alice <alice@example.com>\r\n" +
        "To: bob@example.net\r\nMessage-ID: <m1@example.com>\r\nDate: Thu, 3 Dec 2026 07:00:00 +0000\r\n" +
        "\r\nHello,\r\nthis line is signed.\r\n.dot-stuffed line\r\n";
      const r = await smtpSend(inst.port, {
        from: "alice@example.com",
        to: ["alice@localhost"],
        body,
      });
      assertEquals(r.code, 250, r.replies.join("\n") + (await dkim.log()));
      const text = await waitDelivered(inst.spool, "alice", "signed");
      assertMatch(text, /\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=example\.com;/);

      // mailauth, against the TXT record OpenDKIM's key would have in DNS.
      const result = await dkimVerify(asSent(text), {
        resolver: (name: string, type: string) => {
          if (type === "TXT" && name === dkim.txtName) return Promise.resolve([[dkim.txtRecord]]);
          const e = new Error(`no ${type} ${name}`) as Error & { code: string };
          e.code = "ENOTFOUND";
          return Promise.reject(e);
        },
      });
      const statuses = result.results.map((x: { status: { result: string } }) => x.status.result);
      assertEquals(statuses, ["pass"], JSON.stringify(result.results, null, 1));

      // OpenDKIM verifies what comes from outside: the same message, from 192.0.2.7 by XCLIENT.
      const resent = asSent(text).replace(/\r\n\./g, "\r\n..");
      const replies = await playScript("127.0.0.1", inst.port, [
        "EHLO relay.test",
        "XCLIENT ADDR=192.0.2.7 NAME=mx.example.com",
        "EHLO mx.example.com",
        "MAIL FROM:<alice@example.com>",
        "RCPT TO:<bob@localhost>",
        "DATA",
        { raw: resent + ".\r\n", replies: 1 },
        "QUIT",
      ], { strict: true });
      const last = replies.map((x) => x.replies.map((l) => l.at(-1)).join(" | "));
      assertMatch(last.join("\n"), /250 2\.0\.0 Ok: queued as/);
      const verified = await waitDelivered(inst.spool, "bob", "signed");
      assertMatch(verified, /Authentication-Results: [^\n]*(\n\t[^\n]*)*dkim=pass/);
    } finally {
      await inst.stop();
      await dkim.stop();
    }
  },
});

Deno.test({
  name: "milter interop: rspamd refuses GTUBE and annotates other mail",
  ...opts,
  fn: async () => {
    const rspamd = await startRspamd();
    if (!rspamd) return;
    const inst = await startInstance({ mainCf: `smtpd_milters = ${rspamd.milter}` });
    try {
      const spam = await smtpSend(inst.port, {
        from: "a@example.com",
        to: ["alice@localhost"],
        body: `Subject: spam\r\n\r\n${GTUBE}\r\n`,
      });
      assert(spam.code >= 500 && spam.code < 600, spam.replies.join("\n"));
      await waitUntil(
        async () => /milter-reject: END-OF-MESSAGE from /.test(await inst.log()),
        5000,
        "milter-reject log line",
      );
      const ham = await smtpSend(inst.port, {
        from: "a@example.com",
        to: ["alice@localhost"],
        body: "Subject: ham\r\nFrom: a@example.com\r\n\r\nan ordinary message\r\n",
      });
      assertEquals(ham.code, 250, ham.replies.join("\n"));
      const text = await waitDelivered(inst.spool, "alice", "ham");
      assertMatch(text, /\nX-Spamd-Result: /);
      assertEquals(await delivered(inst.spool, "alice", "spam"), null);
    } finally {
      await inst.stop();
      await rspamd.stop();
    }
  },
});

Deno.test({
  name: "milter interop: clamav-milter refuses EICAR; a dead milter gets 451, nothing lost",
  ...opts,
  fn: async (t) => {
    const clam = await startClamavMilter();
    if (!clam) return;
    const inst = await startInstance({ mainCf: `smtpd_milters = ${clam.milter}` });
    let stopped = false;
    try {
      await t.step("EICAR refused, clean mail delivered", async () => {
        const virus = await smtpSend(inst.port, {
          from: "a@example.com",
          to: ["alice@localhost"],
          body: `Subject: virus\r\n\r\n${EICAR}\r\n`,
        });
        assert(virus.code >= 500 && virus.code < 600, virus.replies.join("\n"));
        const clean = await smtpSend(inst.port, {
          from: "a@example.com",
          to: ["alice@localhost"],
          body: "Subject: clean\r\n\r\nnothing to see\r\n",
        });
        assertEquals(clean.code, 250, clean.replies.join("\n"));
        await waitDelivered(inst.spool, "alice", "clean");
        assertEquals(await delivered(inst.spool, "alice", "virus"), null);
      });
      await t.step("the milter gone: 451 4.7.1, the client keeps the message", async () => {
        await clam.stop();
        stopped = true;
        const r = await smtpSend(inst.port, {
          from: "a@example.com",
          to: ["alice@localhost"],
          body: "Subject: later\r\n\r\nretry me\r\n",
        });
        assertEquals(r.code, 451, r.replies.join("\n"));
        assertEquals(r.text, "Service unavailable - try again later");
        // The message delivered before the milter went away is still there, once.
        const copies = [];
        for (const f of await maildirFiles(inst.spool, "alice")) {
          if ((await Deno.readTextFile(f)).includes("\nSubject: clean\n")) copies.push(f);
        }
        assertEquals(copies.length, 1);
      });
    } finally {
      await inst.stop();
      if (!stopped) await clam.stop();
    }
  },
});
