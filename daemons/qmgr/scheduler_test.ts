/**
 * Tests for the pure scheduler with a fake clock: slow start and feedback,
 * dead destinations and their revival, recipient limits, per-recipient
 * queues, process limits, rate delay and fairness between a large mailing
 * and a small message.
 */
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  type Action,
  type Entry,
  parseFeedback,
  Scheduler,
  type TransportLimits,
} from "./scheduler.ts";

interface R {
  address: string;
}

const LIMITS: TransportLimits = {
  concurrencyLimit: 20,
  initialConcurrency: 5,
  recipientLimit: 50,
  positiveFeedback: { base: 1, perWindow: false },
  negativeFeedback: { base: 1, perWindow: false },
  failedCohortLimit: 1,
  rateDelayMs: 0,
  processLimit: 100,
  transportRateDelayMs: 0,
};

function setup(over: Partial<TransportLimits> = {}, deadTimeMs = 300_000) {
  const clock = { t: 1_000_000 };
  const debug: string[] = [];
  const s = new Scheduler<R>({
    now: () => clock.t,
    limits: () => ({ ...LIMITS, ...over }),
    deadTimeMs,
    debug: (l) => debug.push(l),
  });
  return { s, clock, debug };
}

const rcpts = (n: number, domain = "example.com") =>
  Array.from({ length: n }, (_, i) => ({ address: `u${i}@${domain}` }));

const delivers = (acts: Action<R>[]) =>
  acts.filter((a) => a.kind === "deliver").map((a) => a.entry as Entry<R>);

const FAIL = { dsn: "4.4.1", reason: "connect to x: Connection refused" };

Deno.test("scheduler", async (t) => {
  await t.step("feedback values parse as Postfix's", () => {
    assertEquals(parseFeedback("1"), { base: 1, perWindow: false });
    assertEquals(parseFeedback("1/concurrency"), { base: 1, perWindow: true });
    assertEquals(parseFeedback("1/8"), { base: 0.125, perWindow: false });
    assertEquals(parseFeedback(" 0.5 "), { base: 0.5, perWindow: false });
    assertEquals(parseFeedback("2"), null, "above 1");
    assertEquals(parseFeedback("1/0"), null);
    assertEquals(parseFeedback("1/foo"), null);
    assertEquals(parseFeedback("x"), null);
  });

  await t.step("slow start: the initial window, growing with successes up to the limit", () => {
    // Postfix grows the window only while it is below what is in use plus
    // the initial concurrency: one delivery alone does not widen it.
    const lone = setup();
    lone.s.enqueue("M", "smtp", "d", rcpts(1));
    lone.s.enqueue("N", "other", "d", rcpts(1));
    lone.s.done(delivers(lone.s.next())[0], { failed: null });
    assertEquals(lone.debug, [
      "qmgr_queue_unthrottle: queue d: limit 20 window 5 success 0 failure 0 fail_cohorts 0",
    ], "no feedback step");
    const { s } = setup();
    for (let m = 0; m < 40; m++) s.enqueue(`M${m}`, "smtp", "example.com", rcpts(1));
    let running = delivers(s.next());
    assertEquals(running.length, 5, "initial_destination_concurrency");
    assertEquals(s.state("smtp", "example.com")?.window, 5);
    // One success widens the window by one (positive feedback 1): two can start.
    s.done(running.shift()!, { failed: null });
    assertEquals(s.state("smtp", "example.com")?.window, 6);
    running = running.concat(delivers(s.next()));
    assertEquals(running.length, 6);
    // Keep succeeding: the window reaches the limit and stops there.
    for (let i = 0; i < 60; i++) {
      const e = running.shift();
      if (!e) break;
      s.done(e, { failed: null });
      running = running.concat(delivers(s.next()));
      assert(running.length <= 20, `at most the limit in flight (${running.length})`);
    }
    assertEquals(s.state("smtp", "example.com"), null, "idle queues are forgotten");
  });

  await t.step("1/concurrency feedback grows the window by one per window of successes", () => {
    const { s } = setup({ positiveFeedback: { base: 1, perWindow: true } });
    for (let m = 0; m < 20; m++) s.enqueue(`M${m}`, "smtp", "example.com", rcpts(1));
    let running = delivers(s.next());
    assertEquals(running.length, 5);
    for (let i = 0; i < 4; i++) {
      s.done(running.shift()!, { failed: null });
      running = running.concat(delivers(s.next()));
    }
    assertEquals(s.state("smtp", "example.com")?.window, 5, "4 x 1/5 is not yet a step");
    s.done(running.shift()!, { failed: null });
    assertEquals(s.state("smtp", "example.com")?.window, 6);
  });

  await t.step("a failed cohort makes the destination dead; waiting entries are suspended", () => {
    const { s, clock } = setup();
    for (let m = 0; m < 8; m++) s.enqueue(`M${m}`, "smtp", "example.com", rcpts(1));
    const running = delivers(s.next());
    assertEquals(running.length, 5);
    // As Postfix: 1/5 + 1/3 of a cohort, the window 5 -> 3 -> 2.
    for (let i = 0; i < 2; i++) s.done(running.shift()!, { failed: FAIL });
    assertEquals(s.state("smtp", "example.com"), { window: 2, busy: 3, waiting: 3, dead: false });
    assertEquals(delivers(s.next()).length, 0, "window 2, three busy");
    s.done(running.shift()!, { failed: FAIL }); // + 1/2 >= 1: dead
    const acts = s.next();
    assertEquals(acts.map((a) => a.kind), ["suspended", "suspended", "suspended"]);
    assertEquals(acts[0].kind === "suspended" && acts[0].why, FAIL);
    assertEquals(s.state("smtp", "example.com")?.dead, true);
    // New mail for a dead destination is suspended at once, without a delivery.
    s.enqueue("N1", "smtp", "example.com", rcpts(2));
    assertEquals(s.next().map((a) => a.kind), ["suspended"]);
    // The last deliveries in flight failing change nothing.
    s.done(running.shift()!, { failed: FAIL });
    s.done(running.shift()!, { failed: FAIL });
    assertEquals(s.nextWakeup(), clock.t + 300_000);
    // After minimal_backoff_time it is alive again with the initial window.
    clock.t += 300_000;
    s.enqueue("N2", "smtp", "example.com", rcpts(1));
    assertEquals(delivers(s.next()).length, 1);
    assertEquals(s.state("smtp", "example.com")?.window, 5);
  });

  await t.step("a success between failures resets the cohort count", () => {
    const { s } = setup({ initialConcurrency: 2 });
    for (let m = 0; m < 10; m++) s.enqueue(`M${m}`, "smtp", "d", rcpts(1));
    let running = delivers(s.next());
    for (let i = 0; i < 6; i++) {
      // fail, succeed, fail, succeed...: never a whole cohort of failures
      s.done(running.shift()!, { failed: i % 2 === 0 ? FAIL : null });
      running = running.concat(delivers(s.next()));
      assertEquals(s.state("smtp", "d")?.dead, false);
    }
  });

  await t.step("flushDead revives at once; cohort limit 0 never kills", () => {
    const { s } = setup();
    s.enqueue("M", "smtp", "d", rcpts(1));
    s.enqueue("N", "smtp", "d", rcpts(1));
    const [e] = delivers(s.next());
    s.done(e, { failed: FAIL });
    assertEquals(s.state("smtp", "d")?.dead, false, "1/5 of a cohort");
    const two = setup({ initialConcurrency: 1 });
    two.s.enqueue("M", "smtp", "d", rcpts(1));
    two.s.done(delivers(two.s.next())[0], { failed: FAIL });
    assertEquals(two.s.state("smtp", "d")?.dead, true);
    two.s.flushDead();
    two.s.enqueue("M2", "smtp", "d", rcpts(1));
    assertEquals(delivers(two.s.next()).length, 1);
    const never = setup({ initialConcurrency: 1, failedCohortLimit: 0 });
    never.s.enqueue("M", "smtp", "d", rcpts(3));
    for (let i = 0; i < 5; i++) {
      never.s.enqueue(`M${i}`, "smtp", "d", rcpts(1));
      never.s.done(delivers(never.s.next())[0], { failed: FAIL });
      assertEquals(never.s.state("smtp", "d")?.dead, false);
      assertEquals(never.s.state("smtp", "d")?.window, 1, "never below 1");
    }
  });

  await t.step("recipient limit cuts entries; limit 1 makes per-recipient queues", () => {
    const { s } = setup({ recipientLimit: 50 });
    const entries = s.enqueue("M", "smtp", "example.com", rcpts(120));
    assertEquals(entries.map((e) => e.recipients.length), [50, 50, 20]);
    const local = setup({ recipientLimit: 1, concurrencyLimit: 2 });
    const le = local.s.enqueue("M", "local", "localhost", [
      { address: "A@localhost" },
      { address: "b@localhost" },
    ]);
    assertEquals(le.map((e) => e.queue), ["a@localhost", "b@localhost"]);
    for (let m = 0; m < 5; m++) {
      local.s.enqueue(`N${m}`, "local", "localhost", [{ address: "a@localhost" }]);
    }
    const started = delivers(local.s.next());
    assertEquals(
      started.filter((e) => e.queue === "a@localhost").length,
      2,
      "concurrency limit per recipient",
    );
  });

  await t.step("the transport's process limit bounds all its destinations", () => {
    const { s } = setup({ processLimit: 3 });
    for (const d of ["a", "b", "c", "d"]) s.enqueue(`M${d}`, "smtp", d, rcpts(2, d));
    const first = delivers(s.next());
    assertEquals(first.length, 3);
    assertEquals(new Set(first.map((e) => e.nexthop)).size, 3, "round-robin over destinations");
    s.done(first[0], { failed: null });
    const more = delivers(s.next());
    assertEquals(more.map((e) => e.nexthop), ["d"], "the destination not yet served goes next");
  });

  await t.step("rate delay: one at a time, spaced by the delay after each finishes", () => {
    const { s, clock } = setup({ rateDelayMs: 10_000 });
    for (let m = 0; m < 3; m++) s.enqueue(`M${m}`, "smtp", "d", rcpts(1));
    const [a, ...none] = delivers(s.next());
    assertEquals(none.length, 0);
    s.done(a, { failed: null });
    assertEquals(delivers(s.next()).length, 0);
    assertEquals(s.nextWakeup(), clock.t + 10_000);
    clock.t += 10_000;
    assertEquals(delivers(s.next()).length, 1);
  });

  await t.step(
    "a small message is not stuck behind a large mailing to the same destination",
    () => {
      const { s } = setup({ initialConcurrency: 1, concurrencyLimit: 1 });
      s.enqueue("BIG", "smtp", "d", rcpts(10_000, "d"));
      s.enqueue("SMALL", "smtp", "d", rcpts(1, "d"));
      const order: string[] = [];
      for (let i = 0; i < 4; i++) {
        const [e] = delivers(s.next());
        order.push(e.message);
        s.done(e, { failed: null });
      }
      assertEquals(order, ["BIG", "SMALL", "BIG", "BIG"]);
    },
  );

  await t.step("release gives the slot back without feedback; requeue puts the entry first", () => {
    const { s } = setup();
    s.enqueue("M1", "smtp", "d", rcpts(1));
    s.enqueue("M2", "smtp", "d", rcpts(1));
    const [e1, e2] = delivers(s.next());
    s.done(e2, { failed: null });
    const w = s.state("smtp", "d")!.window;
    s.release(e1);
    assertEquals(s.state("smtp", "d"), { window: w, busy: 0, waiting: 0, dead: false });
    s.requeue(e1);
    assertEquals(s.state("smtp", "d"), { window: w, busy: 0, waiting: 1, dead: false });
    assertEquals(delivers(s.next())[0], e1);
    assertEquals(s.busy, 1);
    // Our own agent failed for good: the slot is free, no feedback, nothing kept.
    s.doneWithoutFeedback(e1);
    assertEquals([s.busy, s.queueCount], [0, 0]);
  });

  await t.step(
    "20,000 destinations: the process limit holds, every entry once, nothing left",
    () => {
      const { s } = setup({ processLimit: 100 });
      const n = 20_000;
      for (let d = 0; d < n; d++) {
        s.enqueue(
          `M${d % 7}`,
          "smtp",
          `d${d}.example`,
          rcpts(1, `d${d}`),
        );
      }
      const seen = new Set<string>();
      let running = delivers(s.next());
      while (running.length > 0) {
        assert(running.length <= 100, `${running.length} in flight`);
        const e = running.shift()!;
        assert(!seen.has(e.queue), `${e.queue} twice`);
        seen.add(e.queue);
        s.done(e, { failed: null });
        running = running.concat(delivers(s.next()));
      }
      assertEquals(seen.size, n);
      assertEquals([s.busy, s.queueCount, s.nextWakeup()], [0, 0, null]);
    },
  );

  await t.step("feedback debug lines say the window", () => {
    const { s, debug } = setup();
    s.enqueue("M", "smtp", "example.com", rcpts(1));
    s.enqueue("N", "smtp", "example.com", rcpts(1));
    s.done(delivers(s.next())[0], { failed: null });
    assertEquals(s.state("smtp", "example.com")?.window, 6);
    assertEquals(debug, [
      "qmgr_queue_unthrottle: feedback 1",
      "qmgr_queue_unthrottle: queue example.com: limit 20 window 6 success 0 failure 0 fail_cohorts 0",
    ]);
  });

  await t.step("negative feedback and a failed cohort log as Postfix 3.7 does", () => {
    // The lines a live Postfix logged for three refused connections in a row.
    const { s, debug } = setup();
    for (let m = 0; m < 8; m++) s.enqueue(`M${m}`, "smtp", "[127.0.0.1]:43301", rcpts(1));
    const running = delivers(s.next());
    for (let i = 0; i < 3; i++) s.done(running.shift()!, { failed: FAIL });
    assertEquals(debug, [
      "qmgr_queue_throttle: feedback 1",
      "qmgr_queue_throttle: queue [127.0.0.1]:43301: limit 20 window 3 success 0 failure 1 fail_cohorts 0.2",
      "qmgr_queue_throttle: feedback 1",
      "qmgr_queue_throttle: queue [127.0.0.1]:43301: limit 20 window 2 success 0 failure 1 fail_cohorts 0.533333",
      "qmgr_queue_throttle: queue [127.0.0.1]:43301: limit 20 window 0 success 0 failure 1 fail_cohorts 1.03333",
    ]);
  });
});
