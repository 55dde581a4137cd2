/**
 * Log tools written for Postfix read Postwarden's maillog: pflogsumm
 * (with --syslog-name, since our program names are postwarden/...) counts
 * received, delivered, bounced and rejected mail from a real run.
 */
import { assertEquals } from "../helpers/assert.ts";
import { maildirFiles, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, run } from "../helpers/peers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const PFLOGSUMM = "/usr/sbin/pflogsumm";

Deno.test({
  name: "interop: pflogsumm summarizes Postwarden's maillog",
  ...opts,
  fn: async () => {
    if (!havePeer(PFLOGSUMM)) return;
    // Clients on 127.0.0.1 are outside mynetworks here, so relaying is refused.
    const inst = await startInstance({ mainCf: "mynetworks = 10.0.0.0/8" });
    try {
      for (let i = 0; i < 2; i++) {
        const r = await smtpSend(inst.port, {
          from: "bob@localhost",
          to: ["alice@localhost"],
          body: `m${i}\r\n`,
        });
        assertEquals(r.code, 250);
      }
      const denied = await smtpSend(inst.port, {
        from: "bob@localhost",
        to: ["x@remote.example"],
        body: "x\r\n",
      });
      assertEquals(denied.code, 554);
      const bad = await smtpSend(inst.port, {
        from: "bob@localhost",
        to: [".bad@localhost"],
        body: "b\r\n",
      });
      assertEquals(bad.code, 250);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "bob")).length === 1,
        10_000,
        "bounce",
      );
      await waitForLog(inst, (l) => (l.match(/: removed/g) ?? []).length === 4, 10_000);
      const r = await run(PFLOGSUMM, ["--syslog-name=postwarden", inst.maillog]);
      assertEquals(r.code, 0, r.stderr);
      const count = (what: string) =>
        Number(new RegExp(`^\\s*(\\d+)\\s+${what}`, "m").exec(r.stdout)?.[1]);
      // received (smtpd client= lines, as for Postfix): 2 to alice and 1 to .bad;
      // delivered: alice twice and the bounce notice to bob
      assertEquals(
        {
          received: count("received"),
          delivered: count("delivered"),
          bounced: count("bounced"),
          rejected: count("rejected"),
        },
        { received: 3, delivered: 3, bounced: 1, rejected: 1 },
        r.stdout.slice(0, 600),
      );
    } finally {
      await inst.stop();
    }
  },
});
