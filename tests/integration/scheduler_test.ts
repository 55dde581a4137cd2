/**
 * qmgr's scheduler against a real next hop, read from the maillog (issue 9
 * acceptance): a sink that stalls each transaction shows delivery starting
 * at initial_destination_concurrency and the window growing with successes
 * up to the destination concurrency limit (destination_concurrency_feedback_debug
 * lines, and the sink's own count of transactions at once); a sink that
 * answers 421 makes the destination dead after one failed cohort, the
 * remaining requests are deferred "delivery temporarily suspended" without
 * a connection, and the message is retried on the configured backoff
 * (minimal_backoff_time, doubling, maximal_backoff_time), its sender
 * warned once after delay_warning_time (a notice Python's email library
 * reads as an RFC 3464 report); a flush then delivers it.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer } from "../helpers/peers.ts";
import { parseDsn, PYTHON } from "../helpers/dsn_python.ts";
import { ScriptedSink } from "../helpers/scripted_sink.ts";

/** Seconds of the day of a maillog line ("Mon DD HH:MM:SS ..."). */
function secondsOf(line: string): number {
  const [h, m, s] = line.split(" ").filter((x) => x !== "")[2].split(":").map(Number);
  return h * 3600 + m * 60 + s;
}

Deno.test({
  name: "scheduler: slow start, feedback, dead destination and backoff, from the maillog",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const sinkPort = freePort();
    const sink = new ScriptedSink("127.0.0.1", sinkPort);
    const nexthop = `[127.0.0.1]:${sinkPort}`;
    const inst = await startInstance({
      mainCf: [
        `relayhost = ${nexthop}`,
        "destination_concurrency_feedback_debug = yes",
        "initial_destination_concurrency = 3",
        "default_destination_concurrency_limit = 6",
        "smtp_destination_recipient_limit = 2",
        "queue_run_delay = 1s",
        "minimal_backoff_time = 3s",
        "maximal_backoff_time = 6s",
        "delay_warning_time = 5s",
      ].join("\n"),
    });
    sink.start();
    const window = (l: string) => Number(/ window (\d+) /.exec(l)![1]);
    try {
      await t.step("slow start: 3 at once at first, growing with successes up to 6", async () => {
        // 60 recipients, 2 per request: 30 requests for one destination at once.
        const to = Array.from({ length: 60 }, (_, i) => `r${i}@example.net`);
        const r = await smtpSend(inst.port, {
          from: "a@example.com",
          to,
          body: "Subject: s\r\n\r\nx\r\n",
        });
        assertEquals(r.code, 250);
        await waitUntil(() => sink.delivered.length === 30, 60_000, "30 deliveries");
        assertEquals(sink.delivered.flat().length, 60);
        assert(sink.delivered.every((d) => d.length === 2), "smtp_destination_recipient_limit");
        // The first three transactions started together; nothing more until one finished.
        assertEquals(sink.startedAt.slice(0, 3), [0, 1, 2]);
        assertEquals(sink.maxInTransaction, 6, "the concurrency limit, reached and kept");
        // qmgr logs a window after the agent reports, which is after the sink's 250.
        const unthrottled = (log: string) =>
          log.split("\n").filter((l) =>
            l.includes(`qmgr_queue_unthrottle: queue ${nexthop}: limit 6 window`)
          );
        const log = await waitForLog(inst, (l) => unthrottled(l).length >= 29, 15_000);
        const lines = unthrottled(log);
        const windows = lines.map(window);
        assertEquals(windows[0], 4, "the first success widens the initial window of 3");
        assert(windows.every((w, i) => i === 0 || w >= windows[i - 1]), `${windows}`);
        assertEquals(Math.max(...windows), 6);
        assert(log.includes("qmgr_queue_unthrottle: feedback 1"), "positive feedback 1");
        assert(
          /smtp: default_destination_concurrency_positive_feedback feedback type 0 value at 3: 1/
            .test(log),
        );
      });

      let id = "";
      await t.step(
        "421: dead after a failed cohort, the rest suspended without a connection",
        async () => {
          sink.mode = "421";
          const connectionsBefore = sink.connections;
          const to = Array.from({ length: 20 }, (_, i) => `d${i}@example.net`);
          const r = await smtpSend(inst.port, {
            from: "a@example.com",
            to,
            body: "Subject: d\r\n\r\nx\r\n",
          });
          assertEquals(r.code, 250);
          id = /queued as (\S+)/.exec(r.text)?.[1] ?? "";
          assert(id !== "", r.text);
          const mine = (log: string) =>
            log.split("\n").filter((l) =>
              l.includes(`${id}: to=<`) && l.includes("status=deferred")
            );
          await waitForLog(inst, (l) => mine(l).length >= 20, 20_000);
          const log = await inst.log();
          // Window 3 (a new queue: the earlier one was idle and forgotten), 1/3 of a
          // cohort and two steps down to 1; then 1/3 + 1/1 >= 1: dead.
          assert(
            log.includes(
              `qmgr_queue_throttle: queue ${nexthop}: limit 6 window 1 success 0 failure 1 fail_cohorts 0.333333`,
            ),
            log,
          );
          assert(
            log.includes(
              `qmgr_queue_throttle: queue ${nexthop}: limit 6 window 0 success 0 failure 1 fail_cohorts 1.33333`,
            ),
            log,
          );
          // The first attempt: three requests went out at the initial window, each
          // refused; the other seven were suspended without a connection.
          const first = mine(log).slice(0, 20);
          const suspended = first.filter((l) => l.includes("delivery temporarily suspended"));
          assertEquals(suspended.length, 14, first.join("\n"));
          assertEquals(sink.connections - connectionsBefore >= 3, true);
          assert(
            suspended.every((l) =>
              /dsn=4\.3\.2, status=deferred \(delivery temporarily suspended: host 127\.0\.0\.1\[127\.0\.0\.1\] refused to talk to me: 421 4\.3\.2 /
                .test(l)
            ),
            suspended[0],
          );
        },
      );

      await t.step("retries at the configured backoff: 3s, 3s, 6s (doubling, capped)", async () => {
        const rcpt = "to=<d0@example.net>";
        await waitForLog(
          inst,
          (l) => l.split("\n").filter((x) => x.includes(rcpt)).length >= 4,
          40_000,
        );
        const attempts = (await inst.log()).split("\n").filter((l) => l.includes(rcpt)).map(
          secondsOf,
        );
        // The next attempt is as far ahead as the message is old, within 3s..6s.
        // Log times have one-second resolution and scans run each second.
        for (let i = 1; i < 4; i++) {
          const age = attempts[i - 1] - attempts[0];
          const want = Math.min(6, Math.max(3, age));
          const gap = attempts[i] - attempts[i - 1];
          assert(
            gap >= want - 1 && gap <= want + 2,
            `attempt ${i}: gap ${gap}s, want ${want}s (${attempts})`,
          );
        }
        assert(attempts[3] - attempts[2] >= 5, `the interval grew to the maximum (${attempts})`);
      });

      await t.step("delay_warning_time: one delay notice, not repeated", async () => {
        // Deferred at least twice past 5s by now; the notice is queued once.
        const log = await inst.log();
        const notices = log.split("\n").filter((l) =>
          l.includes(`${id}: sender delay notification: `)
        );
        assertEquals(notices.length, 1, log);
      });

      await t.step("postqueue -f revives the destination and delivers", async () => {
        sink.mode = "stall";
        sink.stallMs = 0;
        const before = sink.delivered.length;
        const r = await inst.command("postqueue.ts", ["-f"]);
        assertEquals(r.code, 0, r.stderr);
        await waitUntil(() => sink.delivered.length >= before + 10, 20_000, "the 20 recipients");
        await waitForLog(inst, `${id}: removed`, 10_000);
      });

      await t.step("the delay notice parses with Python's email library as a DSN", async () => {
        if (!havePeer(PYTHON)) return;
        await waitUntil(
          () => sink.messages.some((m) => m.from === "" && m.to.includes("a@example.com")),
          20_000,
          "the delay notice, delivered after the flush",
        );
        const notice = sink.messages.find((m) => m.from === "" && m.to.includes("a@example.com"))!;
        const dsn = await parseDsn(notice.data);
        assertEquals([dsn.type, dsn.reportType, dsn.defects], [
          "multipart/report",
          "delivery-status",
          [],
        ]);
        assertEquals(dsn.recipients.length, 20, JSON.stringify(dsn));
        for (const rcpt of dsn.recipients) {
          assertEquals(rcpt["Action"], "delayed");
          assertEquals(rcpt["Status"], "4.3.2");
          assert(
            /^rfc822; ?d\d+@example\.net$/.test(rcpt["Final-Recipient"]),
            rcpt["Final-Recipient"],
          );
        }
      });
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});
