/**
 * Fault test: the lmtp daemon is killed (SIGKILL) while an LMTP server
 * holds the message's content without answering. The message is neither
 * lost nor bounced: master starts a new lmtp, qmgr defers the recipient and
 * retries, and the next attempt (a server that answers) delivers it; the
 * first server may have a copy too (at least once, DESIGN.md invariant 2).
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { daemonPid, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { FakeLmtpServer } from "../../daemons/lmtp/_testing.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "fault: SIGKILL of lmtp mid-delivery: deferred and delivered later, never lost",
  ...opts,
  fn: async () => {
    const stalling = new FakeLmtpServer({ final: null });
    const port = stalling.port;
    let answering: FakeLmtpServer | null = null;
    const inst = await startInstance({
      mainCf: [
        "virtual_mailbox_domains = example.com",
        `virtual_transport = lmtp:inet:[127.0.0.1]:${port}`,
        "smtpd_reject_unlisted_recipient = no",
      ].join("\n"),
    });
    try {
      const r = await smtpSend(inst.port, {
        from: "sender@example.net",
        to: ["a@example.com"],
        body: "Subject: kill\r\n\r\nonce at least\r\n",
      });
      assertEquals(r.code, 250, r.text);
      await waitUntil(() => stalling.messages.length === 1, 30_000, "the content sent");
      const pid = await daemonPid(inst, "lmtp");
      assert(pid, "the lmtp daemon's pid");
      Deno.kill(pid, "SIGKILL");
      await stalling.close();
      answering = new FakeLmtpServer({}, port);
      const log = await waitForLog(
        inst,
        new RegExp(
          `to=<a@example\\.com>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${port}, .*status=sent`,
        ),
        60_000,
      );
      assert(!/to=<a@example\.com>.*status=bounced/.test(log), log);
      assertEquals(answering.messages.length, 1);
      assert(answering.messages[0].content.includes("once at least"));
      assert(await daemonPid(inst, "lmtp") !== pid, "master started a new lmtp");
    } finally {
      await inst.stop();
      await answering?.close();
    }
  },
});
