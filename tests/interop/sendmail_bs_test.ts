/**
 * sendmail -bs differential: the same SMTP dialog on standard input to
 * Postfix 3.7's sendmail -bs (smtpd in stand-alone mode) and to ours gets
 * the same replies, line for line, except the host names in the greeting
 * and EHLO and the queue id; both queue the message.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { startInstance } from "../helpers/instance.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX, POSTFIX_SENDMAIL, startPostfix } from "../helpers/postfix.ts";

const DIALOG = [
  "EHLO client.example",
  "MAIL FROM:<a@example.com>",
  "RCPT TO:<x@example.net>",
  "RCPT TO:<y@example.net> NOTIFY=SUCCESS ORCPT=rfc822;y@example.net",
  "NOOP",
  "DATA",
  "Subject: bs",
  "",
  "body",
  ".",
  "RSET",
  "MAIL FROM:<b@example.com> BODY=8BITMIME",
  "RSET",
  "QUIT",
  "",
].join("\r\n");

/** The last line of each reply, host names and queue ids out. */
function replies(out: string): string[] {
  return out.split(/\r?\n/).filter((l) => /^\d{3} /.test(l)).map((l, i) =>
    i <= 1 ? l.slice(0, 3) : l.replace(/queued as [0-9A-Za-z]+/, "queued as ID")
  );
}

Deno.test({
  name: "interop: sendmail -bs answers a dialog as Postfix's sendmail -bs",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (!haveRoot("a live Postfix") || !havePeer(POSTFIX) || !havePeer(POSTFIX_SENDMAIL)) return;
    const pf = await startPostfix({ mainCf: "relayhost = [127.0.0.1]:9\n" });
    const inst = await startInstance({ mainCf: "relayhost = [127.0.0.1]:9" });
    try {
      const theirs = await pf.sendmail(["-bs"], DIALOG);
      const ours = await inst.command("sendmail.ts", ["-bs"], DIALOG);
      assertEquals([theirs.code, ours.code], [0, 0], ours.stderr);
      const t = replies(theirs.output);
      assert(t.some((l) => l.startsWith("250 2.0.0 Ok: queued as")), theirs.output);
      assertEquals(replies(ours.stdout), t);
    } finally {
      await inst.stop();
      await pf.stop();
    }
  },
});
