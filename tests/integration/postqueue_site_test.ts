/**
 * postqueue -s SITE against a running instance whose retry times are an
 * hour away: the deferred mail for that site (a domain fast_flush_domains
 * lists, by default through relay_domains) is delivered at once, mail for
 * other domains stays deferred, and a site outside fast_flush_domains is
 * refused with Postfix 3.7's words.
 */
import { assertEquals } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

Deno.test({
  name: "postqueue -s delivers the deferred mail for one site only",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const sinkPort = freePort();
    const inst = await startInstance({
      mainCf: [
        `relayhost = [127.0.0.1]:${sinkPort}`,
        "relay_domains = relay.example",
        "minimal_backoff_time = 1h",
        "maximal_backoff_time = 1h",
        "queue_run_delay = 1h",
      ].join("\n"),
    });
    const sink = new TestSink(sinkPort);
    try {
      await t.step("mail for two domains deferred while the next hop is down", async () => {
        for (const to of ["b@other.example", "a@Relay.Example", "c@other.example"]) {
          const r = await smtpSend(inst.port, {
            from: "s@example.com",
            to: [to],
            body: `Subject: ${to}\r\n\r\nbody\r\n`,
          });
          assertEquals(r.code, 250, r.text);
        }
        await waitForLog(inst, (l) => (l.match(/status=deferred/g) ?? []).length >= 3, 15_000);
      });
      sink.start();
      await t.step("a site outside fast_flush_domains is refused", async () => {
        const r = await inst.command("postqueue.ts", ["-s", "other.example"]);
        assertEquals([r.code, r.stderr], [
          69,
          'postqueue: fatal: Flush service is not configured for destination "other.example"\n',
        ]);
      });
      await t.step("-s relay.example delivers that site's mail only", async () => {
        const r = await inst.command("postqueue.ts", ["-s", "relay.example"]);
        assertEquals([r.code, r.stderr], [0, ""]);
        await waitUntil(() => sink.messages.length === 1, 10_000, "the relay.example message");
        assertEquals(sink.messages[0].to.map((a) => a.toLowerCase()), ["a@relay.example"]);
        await new Promise((r) => setTimeout(r, 1500));
        assertEquals(sink.messages.length, 1, "other.example mail stays deferred");
        const left = (await inst.command("postqueue.ts", ["-j"])).stdout.trim().split("\n")
          .map((l) => JSON.parse(l).recipients[0].address).sort();
        assertEquals(left, ["b@other.example", "c@other.example"]);
      });
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});
