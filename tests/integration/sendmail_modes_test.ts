/**
 * sendmail's other modes against a running instance whose next hop is
 * down and whose retry times are an hour away, with Postfix 3.7's
 * behaviour from a live run: -t -N gives the header recipients the NOTIFY
 * (postcat showed notify_flags on each extracted recipient) and drops
 * Bcc:; -bs takes an SMTP dialog on stdin and queues through the maildrop
 * and pickup; -bp lists the queue; -qRSITE delivers only that site's
 * deferred mail, -q the rest.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { freePort, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { TestSink } from "../../lib/testrun/sink.ts";
import { QueueFile } from "../../lib/queue/mod.ts";

Deno.test({
  name: "sendmail -t -N, -bs, -bp, -qR and -q in a running instance",
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
    const deferred = () => [...Deno.readDirSync(`${inst.queue}/deferred`)].map((e) => e.name);
    /** What the sink got for `to`; the -N success notices to a@example.com are counted apart. */
    const got = (to: string) => sink.messages.filter((m) => m.to.includes(to));
    try {
      let extracted = "";
      await t.step("-t -N: header recipients get the NOTIFY; Bcc: is removed", async () => {
        const r = await inst.command(
          "sendmail.ts",
          ["-t", "-N", "success,delay", "-f", "a@example.com", "cmd@relay.example"],
          "To: t1@relay.example\nBcc: b1@relay.example\nSubject: extracted\n\nbody\n",
        );
        assertEquals([r.code, r.stderr], [0, ""]);
        await waitUntil(() => deferred().length === 1, 20_000, "the -t message deferred");
        extracted = deferred()[0];
        const f = await QueueFile.open(`${inst.queue}/deferred/${extracted}`);
        try {
          const rcpts = f.head.recipients.map((x) => [x.address, x.notify]).sort();
          assertEquals(rcpts, [
            ["b1@relay.example", ["SUCCESS", "DELAY"]],
            ["cmd@relay.example", ["SUCCESS", "DELAY"]],
            ["t1@relay.example", ["SUCCESS", "DELAY"]],
          ]);
          const text = new TextDecoder().decode(await f.readContent());
          assertStringIncludes(text, "To: t1@relay.example");
          assert(!/^Bcc:/im.test(text), text);
        } finally {
          f.close();
        }
      });

      await t.step("-bs: an SMTP dialog on stdin is queued through the maildrop", async () => {
        const dialog = [
          "EHLO client.example",
          "MAIL FROM:<s@example.com>",
          "RCPT TO:<y@other.example>",
          "DATA",
          "Subject: standalone",
          "",
          "hello",
          ".",
          "QUIT",
          "",
        ].join("\r\n");
        const r = await inst.command("sendmail.ts", ["-bs"], dialog);
        assertEquals(r.code, 0, r.stderr);
        assertMatch(r.stdout, /^220 .* ESMTP /);
        const queued = /250 2\.0\.0 Ok: queued as ([0-9A-F]{15})/.exec(r.stdout);
        assert(queued, r.stdout);
        assertStringIncludes(r.stdout, "221 2.0.0 Bye");
        // pickup takes the maildrop file and gives it its final queue id, as in Postfix.
        await waitForLog(
          inst,
          /pickup\[\d+\]: [0-9A-F]{15}: uid=\d+ from=<s@example\.com>/,
          15_000,
        );
        await waitUntil(() => deferred().length === 2, 20_000, "the -bs message deferred");
      });

      await t.step("-bp lists both", async () => {
        const r = await inst.command("sendmail.ts", ["-bp"]);
        assertEquals(r.code, 0, r.stderr);
        for (const id of deferred()) assertStringIncludes(r.stdout, id);
        assertStringIncludes(r.stdout, "-- 0 Kbytes in 2 Requests.");
      });

      sink.start();
      await t.step("-qRrelay.example delivers that site's mail only", async () => {
        const r = await inst.command("sendmail.ts", ["-qRrelay.example"]);
        assertEquals([r.code, r.stderr], [0, ""]);
        await waitUntil(() => got("t1@relay.example").length === 1, 10_000, "the relay message");
        assertEquals(got("t1@relay.example")[0].to.sort(), [
          "b1@relay.example",
          "cmd@relay.example",
          "t1@relay.example",
        ]);
        // NOTIFY=SUCCESS on a next hop without DSN: the sender is told "relayed".
        await waitUntil(() => got("a@example.com").length === 1, 10_000, "the success notice");
        assertStringIncludes(got("a@example.com")[0].data, "relayed");
        await new Promise((r) => setTimeout(r, 1500));
        assertEquals(got("y@other.example").length, 0, "other.example mail stays deferred");
      });

      await t.step("-q delivers the rest", async () => {
        const r = await inst.command("sendmail.ts", ["-q"]);
        assertEquals([r.code, r.stderr], [0, ""]);
        await waitUntil(() => got("y@other.example").length === 1, 10_000, "the -bs message");
        assertEquals(got("y@other.example")[0].to, ["y@other.example"]);
        assertStringIncludes(got("y@other.example")[0].data, "Subject: standalone");
      });
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});
