/**
 * postsuper -e/-f through a running instance, with the facts a live
 * Postfix 3.7 showed for the same steps: mailq marks the message "#",
 * postqueue -j says forced_expire true, and at its next activation qmgr
 * returns it to the sender ("status=force-expired, returned to sender")
 * without delivering it. A message deferred before keeps its logged
 * status and reason in the bounce (Action: failed, Status: 4.4.1); one
 * that never had a delivery attempt (held at arrival) is deferred
 * "message is administratively expired" (4.7.0) first.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

Deno.test({
  name: "postsuper -e and -f: returned to the sender at the next activation, as Postfix",
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
        "smtpd_recipient_restrictions = check_recipient_access inline:{ held@example.net=HOLD }," +
        " permit_mynetworks, reject_unauth_destination",
      ].join("\n"),
    });
    const sink = new TestSink(sinkPort);
    const jobs = async () =>
      (await inst.command("postqueue.ts", ["-j"])).stdout.trim().split("\n").filter((l) => l)
        .map((l) => JSON.parse(l));
    const send = async (to: string) => {
      const r = await smtpSend(inst.port, {
        from: "a@example.com",
        to: [to],
        body: `Subject: ${to}\r\n\r\nbody\r\n`,
      });
      assertEquals(r.code, 250);
    };
    try {
      let deferred = "";
      await t.step("-e: a deferred message is marked '#' and forced_expire", async () => {
        await send("b@example.net");
        await waitForLog(inst, /status=deferred/, 15_000);
        deferred = (await jobs())[0].queue_id;
        const e = await inst.command("postsuper.ts", ["-e", deferred]);
        assertEquals([e.code, e.stderr.trim()], [0, "postsuper: Force-expired: 1 message"]);
        const listed = await jobs();
        assertEquals(listed[0].forced_expire, true);
        assertMatch(
          (await inst.command("postqueue.ts", ["-p"])).stdout,
          new RegExp(`^${deferred}#`, "m"),
        );
      });
      await t.step("its next activation returns it with its logged status", async () => {
        assertEquals((await inst.command("postqueue.ts", ["-i", deferred])).code, 0);
        const log = await waitForLog(inst, `${deferred}: removed`, 10_000);
        assertMatch(
          log,
          new RegExp(
            `${deferred}: from=<a@example\\.com>, status=force-expired, returned to sender`,
          ),
        );
        assert(!new RegExp(`${deferred}: to=<b@example\\.net>, .*status=sent`).test(log));
      });
      let held = "";
      await t.step("-f: a message held at arrival is released and expired", async () => {
        await send("held@example.net");
        await waitUntil(
          async () => (await jobs()).some((m) => m.queue_name === "hold"),
          10_000,
          "held",
        );
        held = (await jobs()).find((m) => m.queue_name === "hold").queue_id;
        const f = await inst.command("postsuper.ts", ["-f", held]);
        assertEquals(f.stderr.trim().split("\n"), [
          "postsuper: Force-expired: 1 message",
          "postsuper: Released from hold: 1 message",
        ]);
        assertEquals((await inst.command("postqueue.ts", ["-i", held])).code, 0);
        const log = await waitForLog(inst, `${held}: removed`, 10_000);
        assertMatch(
          log,
          new RegExp(
            `${held}: to=<held@example\\.net>, relay=none, .*dsn=4\\.7\\.0, ` +
              "status=deferred \\(message is administratively expired\\)",
          ),
        );
        assertMatch(log, new RegExp(`${held}: from=<a@example\\.com>, status=force-expired`));
      });
      await t.step(
        "both bounces reach the sender: Action failed, the statuses as Postfix's",
        async () => {
          sink.start();
          assertEquals((await inst.command("postqueue.ts", ["-f"])).code, 0);
          await waitUntil(() => sink.messages.length === 2, 15_000, "two bounces");
          const bounces = sink.messages.map((m) => m.data);
          for (const b of bounces) {
            assertEquals(sink.messages[bounces.indexOf(b)].to, ["a@example.com"]);
            assertStringIncludes(b, "Action: failed");
          }
          const first = bounces.find((b) => b.includes("b@example.net"))!;
          assertStringIncludes(first, "Status: 4.4.1");
          assertStringIncludes(first, "Connection refused");
          const second = bounces.find((b) => b.includes("held@example.net"))!;
          assertStringIncludes(second, "Status: 4.7.0");
          assertStringIncludes(second, "message is administratively expired");
        },
      );
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});
