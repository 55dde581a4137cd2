/**
 * postqueue -i and -f against a running instance whose retry times are an
 * hour away: -i ID delivers that deferred message at once and leaves the
 * other deferred one alone; -f then delivers the rest. Without the flush
 * neither would be retried within the test.
 */
import { assertEquals } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

Deno.test({
  name: "postqueue -i flushes one deferred message, -f the rest",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const sinkPort = freePort();
    const inst = await startInstance({
      mainCf: [
        `relayhost = [127.0.0.1]:${sinkPort}`,
        "minimal_backoff_time = 1h",
        "maximal_backoff_time = 1h",
        "queue_run_delay = 1h",
      ].join("\n"),
    });
    const sink = new TestSink(sinkPort);
    try {
      const ids: string[] = [];
      await t.step("two messages deferred while the next hop is down", async () => {
        for (const to of ["one@example.net", "two@example.net"]) {
          const r = await smtpSend(inst.port, {
            from: "a@example.com",
            to: [to],
            body: `Subject: ${to}\r\n\r\nbody\r\n`,
          });
          assertEquals(r.code, 250);
        }
        await waitForLog(inst, (l) => (l.match(/status=deferred/g) ?? []).length >= 2, 15_000);
        const listed = (await inst.command("postqueue.ts", ["-j"])).stdout.trim().split("\n")
          .map((l) => JSON.parse(l));
        assertEquals(listed.map((m) => m.queue_name), ["deferred", "deferred"]);
        const byRcpt = new Map(listed.map((m) => [m.recipients[0].address, m.queue_id]));
        ids.push(byRcpt.get("one@example.net"), byRcpt.get("two@example.net"));
      });
      sink.start();
      await t.step("-i delivers that one only", async () => {
        const r = await inst.command("postqueue.ts", ["-i", ids[0]]);
        assertEquals([r.code, r.stderr], [0, ""]);
        await waitUntil(() => sink.messages.length === 1, 10_000, "the flushed message");
        assertEquals(sink.messages[0].to, ["one@example.net"]);
        await new Promise((r) => setTimeout(r, 1500));
        assertEquals(sink.messages.length, 1, "the other stays deferred");
        const left = (await inst.command("postqueue.ts", ["-j"])).stdout.trim();
        assertEquals(JSON.parse(left).queue_id, ids[1]);
      });
      await t.step(
        "an id that is not deferred is nothing to do; a bad one is refused",
        async () => {
          const gone = await inst.command("postqueue.ts", ["-i", ids[0]]);
          assertEquals(gone.code, 0, gone.stderr);
          const bad = await inst.command("postqueue.ts", ["-i", "x/../y"]);
          assertEquals(bad.code, 64);
        },
      );
      await t.step("-f delivers the rest", async () => {
        const r = await inst.command("postqueue.ts", ["-f"]);
        assertEquals(r.code, 0, r.stderr);
        await waitUntil(() => sink.messages.length === 2, 10_000, "the second message");
        assertEquals(sink.messages[1].to, ["two@example.net"]);
      });
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});
