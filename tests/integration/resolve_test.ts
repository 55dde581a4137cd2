/**
 * qmgr resolves with lib/resolve, end to end: a running instance delivers
 * the resolved recipient (`alice%localhost@localhost` to alice's Maildir),
 * and the error agent bounces virtual alias domain recipients, relocated
 * users and transport_maps `error:` entries with Postfix's texts, and
 * defers `retry:` entries.
 */
import { assertMatch } from "../helpers/assert.ts";
import { maildirFiles, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "qmgr delivers the resolved recipient and bounces what the resolver refuses",
  ...opts,
  fn: async () => {
    const inst = await startInstance({
      mainCf: [
        // smtpd would refuse these at RCPT (daemons/smtpd/recipients.ts); this
        // test is about what qmgr does with mail that reaches the queue.
        "smtpd_reject_unlisted_recipient = no",
        "virtual_alias_domains = valias.example",
        "relocated_maps = inline:{ moved@localhost=new@else.example }",
        "transport_maps = inline:{ { closed.example = error:5.7.1 no mail here }," +
        " { later.example = retry:4.3.2 try again later } }",
        "notify_classes =",
      ].join("\n"),
    });
    try {
      const to = [
        "alice%localhost@localhost",
        "x@valias.example",
        "moved@localhost",
        "y@closed.example",
      ];
      const r = await smtpSend(inst.port, { from: "", to, body: "Subject: r\r\n\r\nhi\r\n" });
      assertMatch(r.text, /queued as/);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "alice")).length === 1,
        10_000,
        "delivery to alice",
      );
      await waitForLog(inst, "removed", 10_000);
      const log = await inst.log();
      for (
        const re of [
          /local\[\d+\]: [0-9A-F]+: to=<alice@localhost>, orig_to=<alice%localhost@localhost>, relay=local, .*status=sent/,
          /error\[\d+\]: [0-9A-F]+: to=<x@valias\.example>, relay=none, .*dsn=5\.1\.1, status=bounced \(User unknown in virtual alias table\)/,
          /error\[\d+\]: [0-9A-F]+: to=<moved@localhost>, relay=none, .*dsn=5\.1\.6, status=bounced \(User has moved to new@else\.example\)/,
          /error\[\d+\]: [0-9A-F]+: to=<y@closed\.example>, relay=none, .*dsn=5\.7\.1, status=bounced \(no mail here\)/,
        ]
      ) assertMatch(log, re);
      // The stock master.cf's retry service (the error program) defers instead.
      await smtpSend(inst.port, {
        from: "",
        to: ["z@later.example"],
        body: "Subject: r\r\n\r\nhi\r\n",
      });
      assertMatch(
        await waitForLog(inst, "z@later.example>, relay=none", 10_000),
        /error\[\d+\]: [0-9A-F]+: to=<z@later\.example>, relay=none, .*dsn=4\.3\.2, status=deferred \(try again later\)/,
      );
    } finally {
      await inst.stop();
    }
  },
});
