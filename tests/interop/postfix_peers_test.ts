/**
 * Real Postfix as Postwarden's peer on both sides, and curl as an SMTP client:
 *
 * - Postwarden relays to a real Postfix, which delivers with virtual(8)
 *   into a Maildir this test reads (Received chain, body and dot lines).
 * - A real Postfix (mail injected with its sendmail(1) and over SMTP with
 *   swaks) relays to Postwarden, which delivers into its Maildir; its log
 *   names the Postfix client, whose own log has Postwarden's queue id.
 * - curl's SMTP client submits into Postwarden.
 *
 * Postfix runs from tests/helpers/postfix.ts in a temp dir (needs root) and
 * is always stopped in a finally, with a check that no process is left.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { maildirFiles, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot, run } from "../helpers/peers.ts";
import {
  POSTFIX,
  POSTFIX_SENDMAIL,
  type PostfixInstance,
  processesIn,
  startPostfix,
} from "../helpers/postfix.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const SWAKS = "/usr/bin/swaks";
const CURL = "/usr/bin/curl";

/** Stops Postfix and checks that its master (and every daemon) is gone. */
async function stopPostfix(pf: PostfixInstance): Promise<void> {
  const master = await pf.masterPid();
  await pf.stop();
  assertEquals(await processesIn(pf.queue), [], "Postfix processes left in its queue dir");
  if (master) {
    const cmd = await Deno.readTextFile(`/proc/${master}/cmdline`).catch(() => "");
    assert(!cmd.includes("master"), `Postfix master ${master} still running: ${cmd}`);
  }
}

/** A body with the lines SMTP transparency must keep: ".x", "..x" and a lone ".". */
function dottedBody(n: number): string {
  return [
    `From: sender@example.com`,
    `To: rcpt${n}@downstream.test`,
    `Subject: peer test ${n}`,
    `Message-ID: <peer-${n}@client.test>`,
    "",
    `message number ${n}`,
    ".starts with a dot",
    "..starts with two dots",
    ".",
    "last line",
  ].join("\n");
}

Deno.test({
  name: "interop: Postwarden relays to a real Postfix downstream",
  ...opts,
  fn: async () => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const pf = await startPostfix({ virtualDomains: "downstream.test" });
    try {
      const inst = await startInstance({
        mainCf: `relayhost = [127.0.0.1]:${pf.port}`,
      });
      try {
        for (let i = 1; i <= 5; i++) {
          const r = await smtpSend(inst.port, {
            from: "sender@example.com",
            to: [`rcpt${i}@downstream.test`],
            body: dottedBody(i),
          });
          assertEquals(r.code, 250, r.replies.join("\n"));
        }
        await waitUntil(
          async () => (await pf.mailbox()).length === 5,
          30_000,
          "5 messages in Postfix's Maildir",
        ).catch(async (e) => {
          throw new Error(
            `${e.message}\n--- Postwarden log\n${await inst.log()}\n--- Postfix log\n${await pf
              .log()}`,
          );
        });
        const texts = await Promise.all((await pf.mailbox()).map((f) => Deno.readTextFile(f)));
        const seen = new Set<number>();
        for (const text of texts) {
          const n = Number(text.match(/^Subject: peer test (\d+)$/m)?.[1]);
          assert(n >= 1 && n <= 5, `unexpected message:\n${text}`);
          seen.add(n);
          const [head, body] = [
            text.slice(0, text.indexOf("\n\n")),
            text.slice(text.indexOf("\n\n") + 2),
          ];
          // Postfix's own Received: on top, then Postwarden's.
          const received = [...head.matchAll(/^Received: .*(?:\n\s.*)*/gm)].map((m) => m[0]);
          assert(received.length >= 2, `want two Received: headers:\n${head}`);
          assertMatch(
            received[0],
            /^Received: from mx\.test\.example \(\S+ \[127\.0\.0\.1\]\)\n\tby postfix\.test\.example \(Postfix\) with E?SMTP/,
          );
          assertMatch(
            received[1],
            /^Received: from client\.test \(\S+ \[127\.0\.0\.1\]\)\n\tby mx\.test\.example \(Postwarden\) with E?SMTP id \S+/,
          );
          assertStringIncludes(received[1], `for <rcpt${n}@downstream.test>`);
          assertMatch(head, new RegExp(`^Delivered-To: rcpt${n}@downstream\\.test$`, "m"));
          assertMatch(head, /^Return-Path: <sender@example\.com>$/m);
          assertEquals(
            body,
            `message number ${n}\n.starts with a dot\n..starts with two dots\n.\nlast line\n`,
          );
        }
        assertEquals(seen.size, 5);
        // Postwarden's status=sent lines may reach its log after Postfix delivered.
        const sentTo = (log: string) =>
          log.split("\n").filter((l) =>
            l.includes(`relay=127.0.0.1[127.0.0.1]:${pf.port}`) && l.includes("status=sent")
          );
        const log = await waitForLog(inst, (l) => sentTo(l).length >= 5, 10_000);
        const sent = sentTo(log);
        assertEquals(sent.length, 5, log);
        assertMatch(await pf.log(), /postfix\/smtpd\[\d+\]: connect from \S+\[127\.0\.0\.1\]/);
      } finally {
        await inst.stop();
      }
    } finally {
      await stopPostfix(pf);
    }
  },
});

Deno.test({
  name: "interop: a real Postfix upstream relays to Postwarden",
  ...opts,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !havePeer(POSTFIX_SENDMAIL) || !haveRoot("a real Postfix")) return;
    const inst = await startInstance();
    try {
      // Postfix's SMTP client binds 127.0.0.2 so Postwarden's log shows it apart from tests' own clients.
      const pf = await startPostfix({
        myhostname: "upstream.test.example",
        mainCf: [
          `relayhost = [127.0.0.1]:${inst.port}`,
          "smtp_bind_address = 127.0.0.2",
        ].join("\n"),
      });
      try {
        /** Waits for the recipient's mail in Postwarden; checks both logs agree on who sent it. */
        const delivered = async (user: string) => {
          await waitUntil(
            async () => (await maildirFiles(inst.spool, user)).length === 1,
            30_000,
            `${user}'s mail in Postwarden`,
          ).catch(async (e) => {
            throw new Error(
              `${e.message}\n--- Postfix log\n${await pf.log()}\n--- Postwarden log\n${await inst
                .log()}`,
            );
          });
          const text = await Deno.readTextFile((await maildirFiles(inst.spool, user))[0]);
          assertMatch(
            text,
            /^Received: from upstream\.test\.example \(\S+ \[127\.0\.0\.2\]\)\r?\n\tby mx\.test\.example \(Postwarden\)/m,
          );
          assertMatch(text, /^Received: (?:from .*\r?\n\s+)?by upstream\.test\.example \(Postfix/m);
          // Postfix's log: "status=sent (250 2.0.0 Ok: queued as <Postwarden's id>)".
          const sentLine = new RegExp(
            `to=<${user}@localhost>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${inst.port},` +
              `.*status=sent \\(250 [\\d.]+ Ok: queued as (\\S+)\\)`,
          );
          const pwId = sentLine.exec(await waitForLog(pf, sentLine, 10_000))![1];
          // The mail is in the Maildir, but smtpd's lines may still be on their way to the log.
          const log = await waitForLog(inst, `${pwId}: client=`, 10_000);
          assertMatch(log, /connect from \S+\[127\.0\.0\.2\]/);
          assertMatch(log, new RegExp(`${pwId}: client=\\S+\\[127\\.0\\.0\\.2\\]`));
          return text;
        };

        await t.step("injected with Postfix's sendmail", async () => {
          const r = await pf.sendmail(
            ["-f", "alice@upstream.test", "bob@localhost"],
            "From: alice@upstream.test\nTo: bob@localhost\nSubject: via postfix sendmail\n\n" +
              "hello from postfix\n.dot line\n",
          );
          assertEquals(r.code, 0, r.output);
          const text = await delivered("bob");
          assertStringIncludes(text, "Subject: via postfix sendmail");
          assertMatch(text, /hello from postfix\r?\n\.dot line/);
        });

        await t.step("sent with swaks into Postfix's smtpd", async () => {
          if (!havePeer(SWAKS)) return;
          const r = await run(SWAKS, [
            "--server",
            `127.0.0.1:${pf.port}`,
            "--from",
            "carol@upstream.test",
            "--to",
            "carol@localhost",
            "--header",
            "Subject: via postfix smtpd",
          ]);
          assertEquals(r.code, 0, r.stdout + r.stderr);
          const text = await delivered("carol");
          assertStringIncludes(text, "Subject: via postfix smtpd");
          // Postfix's smtpd stamped its own Received: below Postwarden's.
          assertMatch(text, /^Received: from \S+ \(\S+ \[127\.0\.0\.1\]\)\r?\n\tby upstream/m);
        });
      } finally {
        await stopPostfix(pf);
      }
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "interop: curl's SMTP client into Postwarden",
  ...opts,
  fn: async () => {
    if (!havePeer(CURL)) return;
    const inst = await startInstance();
    const file = await Deno.makeTempFile({ prefix: "curl-mail-" });
    try {
      await Deno.writeTextFile(
        file,
        "From: a@example.com\r\nTo: bob@localhost\r\nSubject: via curl\r\n\r\n" +
          "sent by curl\r\n.leading dot\r\n",
      );
      const r = await run(CURL, [
        "-sS",
        "--max-time",
        "30",
        `smtp://127.0.0.1:${inst.port}/curl.test`,
        "--mail-from",
        "a@example.com",
        "--mail-rcpt",
        "bob@localhost",
        "-T",
        file,
      ]);
      assertEquals(r.code, 0, r.stdout + r.stderr);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "bob")).length === 1,
        15_000,
        "bob's mail",
      );
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "bob"))[0]);
      assertStringIncludes(text, "Subject: via curl");
      assertMatch(text, /^Received: from curl\.test \(\S+ \[127\.0\.0\.1\]\)/m);
      assertMatch(text, /sent by curl\r?\n\.leading dot\r?\n/);
      assertMatch(await waitForLog(inst, /from=<a@example\.com>/, 10_000), /from=<a@example\.com>/);
    } finally {
      await Deno.remove(file).catch(() => {});
      await inst.stop();
    }
  },
});
