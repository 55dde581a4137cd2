/**
 * qshape differential: the same deferred mail (five messages, twelve
 * recipients in nine domains, three senders, one of them null) queued in
 * a live Postfix 3.7 and in Postwarden, both with a dead relayhost; the
 * real /usr/sbin/qshape on Postfix's deferred queue and ours on ours print
 * the same table, byte for byte, for recipients, senders (-s), parent
 * domains (-p) and other bucket layouts. The data has no two domains with
 * the same count and name length, since the real script orders those by
 * Perl's hash order.
 */
import { assertEquals } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot, run } from "../helpers/peers.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";

const QSHAPE = "/usr/sbin/qshape";

const MAIL = [
  { from: "x@s1.example", to: ["u1@a.example.com", "u1@aa.example.com", "u1@b.example.org"] },
  { from: "x@s1.example", to: ["u2@aaa.example.com", "u2@aaaa.example.com", "u2@b.example.org"] },
  {
    from: "x@s1.example",
    to: ["u3@aaaaa.example.com", "u3@aaaaaa.example.com", "u3@b.example.org", "u3@c.example.net"],
  },
  { from: "", to: ["u4@c.example.net"] },
  { from: "y@s22.example", to: ["u5@b.example.org"] },
];

Deno.test({
  name: "interop: qshape prints what Postfix's qshape prints for the same queue",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!haveRoot("a live Postfix") || !havePeer(POSTFIX) || !havePeer(QSHAPE)) return;
    const dead = freePort();
    const pf = await startPostfix({ mainCf: `relayhost = [127.0.0.1]:${dead}\n` });
    const inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${dead}` });
    try {
      for (const m of MAIL) {
        const body = "Subject: t\r\n\r\nhello\r\n";
        assertEquals((await smtpSend(pf.port, { ...m, body })).code, 250);
        assertEquals((await smtpSend(inst.port, { ...m, body })).code, 250);
      }
      const all = (l: string) => (l.match(/status=deferred/g) ?? []).length >= 12;
      await waitForLog(inst, all, 20_000);
      await waitForLog({ maillog: pf.maillog }, all, 20_000);
      for (
        const args of [
          [],
          ["-s"],
          ["-p", "-m", "3"],
          ["-p"],
          ["-b", "4", "-t", "1"],
          ["-l", "-w", "100"],
        ]
      ) {
        await t.step(`qshape ${args.join(" ")}`, async () => {
          const theirs = await run(QSHAPE, ["-c", pf.dir, ...args, "deferred"]);
          const ours = await inst.command("qshape.ts", [...args, "deferred"]);
          assertEquals([theirs.code, theirs.stderr], [0, ""]);
          assertEquals([ours.code, ours.stderr], [0, ""]);
          assertEquals(ours.stdout, theirs.stdout);
        });
      }
    } finally {
      await inst.stop();
      await pf.stop();
    }
  },
});
