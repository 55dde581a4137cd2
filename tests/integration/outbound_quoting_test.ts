/**
 * End to end through a whole instance: what a client puts into an envelope
 * or a command cannot inject into our outbound SMTP session, a header or a
 * log record, and a recipient that can never be delivered bounces instead
 * of waiting out maximal_queue_lifetime. The relay is the smtp agent's
 * scripted fake server, which records every command line as received.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { FakeSmtpServer } from "../../daemons/smtp/_testing.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { SmtpClient } from "../helpers/smtp_client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const dec = new TextDecoder();

Deno.test({
  name: "outbound: quoted envelopes, undeliverable names bounce, clean log records",
  ...opts,
  fn: async (t) => {
    const relay = new FakeSmtpServer({ ehlo: ["PIPELINING", "SIZE 10240000", "DSN"] });
    const inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${relay.port}` });
    try {
      await t.step("a quoted local part is relayed quoted, not as parameters", async () => {
        const r = await smtpSend(inst.port, {
          from: '"v@t.example> ORCPT=rfc822;x"@o.example',
          to: ['"a b"@dest.example'],
          body: "Subject: q\r\n\r\nhi\r\n",
        });
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitUntil(() => relay.messages.length === 1, 15_000, "relayed message");
        assertMatch(
          relay.messages[0].mailFrom,
          /^FROM:<"v@t\.example> ORCPT=rfc822;x"@o\.example> SIZE=\d+$/,
        );
        assertEquals(relay.messages[0].rcptTo, ['TO:<"a b"@dest.example>']);
        const log = await waitForLog(inst, "status=sent", 10_000);
        assertMatch(
          log,
          /qmgr\[\d+\]: [0-9A-F]+: from=<"v@t\.example> ORCPT=rfc822;x"@o\.example>,/,
        );
        assertMatch(log, /smtp\[\d+\]: [0-9A-F]+: to=<"a b"@dest\.example>, relay=127\.0\.0\.1/);
      });

      await t.step("a local part too long for a Maildir bounces at once", async () => {
        const long = "a".repeat(300);
        const r = await smtpSend(inst.port, {
          from: "sender@o.example",
          to: [`${long}@localhost`],
          body: "Subject: long\r\n\r\nhi\r\n",
        });
        assertEquals(r.code, 250, r.replies.join("\n"));
        // The notice goes to the sender through the relay.
        await waitUntil(() => relay.messages.length === 2, 20_000, "non-delivery notice");
        const notice = relay.messages[1];
        assertEquals([notice.mailFrom.replace(/ .*/, ""), notice.rcptTo], [
          "FROM:<>",
          ["TO:<sender@o.example>"],
        ]);
        const text = dec.decode(notice.content).replace(/\r\n[ \t]+/g, " "); // unfolded
        assertStringIncludes(text, `Final-Recipient: rfc822; ${long}@localhost`);
        assertStringIncludes(text, "Status: 5.1.1");
        const log = await waitForLog(inst, "status=bounced", 10_000);
        assertMatch(
          log,
          new RegExp(
            `local\\[\\d+\\]: [0-9A-F]+: to=<${long}@localhost>, relay=local, .*dsn=5\\.1\\.1, status=bounced \\(maildir delivery failed: `,
          ),
        );
        assert(!new RegExp(`to=<${long}@localhost>.*status=deferred`).test(log), "never deferred");
      });

      await t.step("control characters from a client never reach the maillog raw", async () => {
        const conn = await SmtpClient.connect(inst.port);
        try {
          await conn.reply(); // greeting
          // A forbidden command (the default regexp: not starting with a letter) is logged.
          const evil = "0EVIL\r\x1b[2J\u0085\u2028Dec  1 00:00:00 mx postwarden/qmgr[1]:";
          await conn.send(`${evil} FORGED: removed\r\nQUIT\r\n`);
          await conn.repliesUntilClosed();
        } finally {
          conn.close();
        }
        const log = await waitForLog(inst, "non-SMTP command", 10_000);
        assertMatch(
          log,
          /warning: non-SMTP command from localhost\[127\.0\.0\.1\]: 0EVIL\\r\\033\[2J\\302\\205\\342\\200\\250Dec {2}1 00:00:00 mx postwarden\/qmgr\[1\]: FORGED: removed$/m,
        );
        for (const line of log.split("\n")) {
          // deno-lint-ignore no-control-regex
          assert(!/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(line), JSON.stringify(line));
          assert(
            line === "" || /^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ postwarden\/\w+\[\d+\]: /.test(line),
            line,
          );
        }
      });
    } finally {
      await inst.stop();
      await relay.close();
    }
  },
});
