/**
 * smtpd's access-table actions end to end, through a whole instance: the
 * queue outcome of HOLD (the message waits in hold/, postqueue shows it
 * with "!", postsuper -H releases it), DISCARD (the client gets 250,
 * nothing is queued or delivered), REDIRECT (only the redirect address
 * gets the message) and BCC (one more recipient), from
 * check_recipient_access and smtpd_end_of_data_restrictions.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { maildirFiles, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "access actions: HOLD, DISCARD, REDIRECT and BCC reach the queue as Postfix's",
  ...opts,
  fn: async (t) => {
    const inst = await startInstance({
      mainCf: [
        "smtpd_recipient_restrictions = check_recipient_access inline:{ " +
        "{hold@localhost=HOLD review first}, {disc@localhost=DISCARD}, " +
        "{red@localhost=REDIRECT boss@localhost}, {bcc@localhost=BCC copy@localhost} }, " +
        "permit_mynetworks, reject",
        "smtpd_end_of_data_restrictions = check_sender_access inline:{ {late@example.com=HOLD} }",
      ].join("\n"),
    });
    const send = (to: string[], subject: string, from = "sender@example.com") =>
      smtpSend(inst.port, { from, to, body: `Subject: ${subject}\r\n\r\nbody\r\n` });
    const delivered = async (user: string, subject: string) => {
      for (const f of await maildirFiles(inst.spool, user)) {
        if ((await Deno.readTextFile(f)).includes(`Subject: ${subject}\n`)) return true;
      }
      return false;
    };
    const queueText = async () => (await inst.command("postqueue.ts", ["-p"])).stdout;
    try {
      await t.step("HOLD: kept in hold/, listed with !, delivered after postsuper -H", async () => {
        const r = await send(["hold@localhost", "alice@localhost"], "held");
        assertEquals(r.code, 250, r.replies.join("\n"));
        const id = /queued as ([0-9A-F]+)/.exec(r.text)![1];
        await waitUntil(async () => (await queueText()).includes(`${id}!`), 5000, "held");
        assertMatch(
          await inst.log(),
          /NOQUEUE: hold: RCPT from localhost\[127\.0\.0\.1\]: <hold@localhost>: Recipient address review first; from=<sender@example\.com> to=<hold@localhost> proto=ESMTP helo=<client\.test>/,
        );
        await new Promise((r) => setTimeout(r, 1500)); // a queue run would have delivered it
        assertEquals(await delivered("alice", "held"), false);
        const rel = await inst.command("postsuper.ts", ["-H", id]);
        assertEquals(rel.code, 0, rel.stderr);
        // One request for both; local writes one mailbox after the other.
        await waitUntil(
          async () => (await delivered("alice", "held")) && (await delivered("hold", "held")),
          10_000,
          "delivery after release",
        );
      });
      await t.step("DISCARD: 250 for the client, nothing queued or delivered", async () => {
        const r = await send(["alice@localhost", "disc@localhost"], "dropped");
        assertEquals(r.code, 250, r.replies.join("\n"));
        const id = /queued as ([0-9A-F]+)/.exec(r.text)![1];
        await new Promise((r) => setTimeout(r, 1500));
        assertEquals(await delivered("alice", "dropped"), false);
        assertEquals(await delivered("disc", "dropped"), false);
        assert(!(await queueText()).includes(id), await queueText());
        assertMatch(
          await inst.log(),
          /[0-9A-F]+: discard: RCPT from .*<disc@localhost>: Recipient address triggers DISCARD action/,
        );
      });
      await t.step("REDIRECT: only the redirect address is a recipient", async () => {
        const r = await send(["alice@localhost", "red@localhost"], "redirected");
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitUntil(() => delivered("boss", "redirected"), 10_000, "redirect delivery");
        await new Promise((r) => setTimeout(r, 500));
        assertEquals(await delivered("alice", "redirected"), false);
        assertEquals(await delivered("red", "redirected"), false);
      });
      await t.step("BCC: the copy address is one more recipient", async () => {
        const r = await send(["bcc@localhost"], "copied");
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitUntil(
          async () => (await delivered("bcc", "copied")) && (await delivered("copy", "copied")),
          10_000,
          "bcc delivery",
        );
      });
      await t.step("end-of-data HOLD: the message waits in hold/", async () => {
        const r = await send(["alice@localhost"], "late hold", "late@example.com");
        assertEquals(r.code, 250, r.replies.join("\n"));
        const id = /queued as ([0-9A-F]+)/.exec(r.text)![1];
        await waitUntil(async () => (await queueText()).includes(`${id}!`), 5000, "held");
        assertMatch(
          await inst.log(),
          new RegExp(
            `${id}: hold: END-OF-MESSAGE from localhost\\[127\\.0\\.0\\.1\\]: <late@example\\.com>: Sender address triggers HOLD action`,
          ),
        );
      });
    } finally {
      await inst.stop();
    }
  },
});
