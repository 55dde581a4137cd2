/**
 * Tests for settling: the backoff schedule (doubling with each deferral,
 * within minimal_backoff_time and maximal_backoff_time) and the one delay
 * warning per message after delay_warning_time, recorded on the queue
 * file so a later deferral does not repeat it, retried when bounce fails.
 * A fake smtp agent defers everything; a fake bounce records requests.
 */
import { exists } from "../../tests/helpers/fs.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { fakeService, unixService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import type { BounceRequest } from "../../lib/bounce/client.ts";
import type { DeliveryRequest } from "../../lib/deliver/mod.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { DELAY_WARNED_MODE } from "../../lib/queue/mod.ts";
import { Qmgr } from "./qmgr.ts";
import { backoffMs } from "./settle.ts";

const SMTP = unixService("smtp", "smtp", 10);

Deno.test("backoff: the message's age within the minimal and maximal backoff times", () => {
  const b = { minMs: 300_000, maxMs: 4_000_000 };
  assertEquals(backoffMs(0, b), 300_000);
  // Each attempt comes as far after arrival as the age was: the interval doubles.
  let age = 0;
  const intervals: number[] = [];
  for (let i = 0; i < 6; i++) {
    const d = backoffMs(age, b);
    intervals.push(d / 1000);
    age += d;
  }
  assertEquals(intervals, [300, 300, 600, 1200, 2400, 4000]);
});

Deno.test("delay warnings (delay_warning_time)", async (t) => {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("qmgr", root, {
    mainCf: "mydestination = localhost\ndelay_warning_time = 1h\n",
  });
  const q = fake.ctx.queue;
  const bounces: BounceRequest[] = [];
  let bounceOk = true;
  const bounce = ipcListen(q.privateSocket("bounce"), async (conn) => {
    const req = await conn.recvMsg<BounceRequest>();
    bounces.push(req);
    await conn.send(
      bounceOk
        ? { status: "ok", queueId: `NOTICE${bounces.length}` }
        : { status: "error", text: "cleanup is down" },
    );
  });
  const agent = ipcListen(q.privateSocket("smtp"), async (conn) => {
    for (;;) {
      const f = await conn.recv();
      if (!f || f.kind !== "msg") return;
      const req = f.msg as unknown as DeliveryRequest;
      await conn.send({
        recipients: req.recipients.map((r) => ({
          index: r.index,
          status: "deferred",
          dsn: "4.4.1",
          reason: "connect to mx.remote.example[192.0.2.1]:25: Connection refused",
          relay: "none",
        })),
      });
    }
  });
  const qmgr = new Qmgr(fake.ctx, [SMTP]);
  const settled = async (id: string) => {
    for (let i = 0; i < 200 && !(await exists(q.path("deferred", id))); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert(await exists(q.path("deferred", id)), `${id} deferred`);
  };
  const mode = async (id: string) => (await Deno.stat(q.path("deferred", id))).mode! & 0o7777;
  const message = (ageMs: number, notify?: string[]) =>
    writeQueueFile(
      q.dir("incoming"),
      { sender: "s@example.org", arrival: Date.now() - ageMs },
      [{ address: "u@remote.example", notify }],
      "Subject: x\r\n\r\nx\r\n",
    );
  try {
    await t.step("younger than delay_warning_time: no warning", async () => {
      const { queueId } = await message(30 * 60_000);
      await qmgr.activate(queueId, "incoming");
      await settled(queueId);
      assertEquals(bounces.length, 0);
      assertEquals(await mode(queueId) & DELAY_WARNED_MODE, 0);
      // Next attempt: as far ahead as the message is old (30 minutes).
      const next = (await Deno.stat(q.path("deferred", queueId))).mtime!.getTime();
      assert(Math.abs(next - (Date.now() + 30 * 60_000)) < 5_000, `${next}`);
    });

    await t.step("older: one warning listing the deferred recipients, recorded", async () => {
      const { queueId } = await message(2 * 3600_000);
      await qmgr.activate(queueId, "incoming");
      await settled(queueId);
      assertEquals(bounces.length, 1);
      const [req] = bounces;
      assertEquals(req.op, "delay");
      assertEquals(req.queueId, queueId);
      assertEquals(req.recipients.map((r) => [r.address, r.action, r.status]), [
        ["u@remote.example", "delayed", "4.4.1"],
      ]);
      assert(
        fake.lines.includes(`${queueId}: sender delay notification: NOTICE1`),
        fake.lines.join("\n"),
      );
      assertEquals(await mode(queueId) & DELAY_WARNED_MODE, DELAY_WARNED_MODE);
      // At most maximal_backoff_time ahead.
      const next = (await Deno.stat(q.path("deferred", queueId))).mtime!.getTime();
      assert(Math.abs(next - (Date.now() + 4000_000)) < 5_000, `${next}`);
      // The next deferral (here: a new qmgr, as after a restart) sends none.
      const again = new Qmgr(fake.ctx, [SMTP]);
      await again.activate(queueId, "deferred");
      await settled(queueId);
      assertEquals(bounces.length, 1, "not repeated");
      await again.stop(1000);
    });

    await t.step(
      "bounce fails: no mark, the warning is tried again at the next deferral",
      async () => {
        bounces.length = 0;
        bounceOk = false;
        const { queueId } = await message(2 * 3600_000);
        await qmgr.activate(queueId, "incoming");
        await settled(queueId);
        assertEquals(bounces.length, 1);
        assertEquals(await mode(queueId) & DELAY_WARNED_MODE, 0);
        assert(fake.lines.some((l) => l.includes(`${queueId}: bounce service: cleanup is down`)));
        bounceOk = true;
        await qmgr.activate(queueId, "deferred");
        await settled(queueId);
        assertEquals(bounces.length, 2);
        assertEquals(await mode(queueId) & DELAY_WARNED_MODE, DELAY_WARNED_MODE);
      },
    );

    await t.step("NOTIFY=NEVER recipients go to bounce, which leaves them out", async () => {
      // qmgr asks; bounce (daemons/bounce wantsNotice) drops recipients whose
      // NOTIFY lacks DELAY, so the request is made and recorded all the same.
      bounces.length = 0;
      const { queueId } = await message(2 * 3600_000, ["NEVER"]);
      await qmgr.activate(queueId, "incoming");
      await settled(queueId);
      assertEquals(bounces.map((b) => b.op), ["delay"]);
      assertEquals(await mode(queueId) & DELAY_WARNED_MODE, DELAY_WARNED_MODE);
    });
  } finally {
    await qmgr.stop(1000);
    bounce.close();
    agent.close();
    fake.abort.abort();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("verification (sendmail -bv): one attempt, one report, no retry", async (t) => {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("qmgr", root, { mainCf: "mydestination = localhost\n" });
  const q = fake.ctx.queue;
  const bounces: BounceRequest[] = [];
  let bounceOk = true;
  const bounce = ipcListen(q.privateSocket("bounce"), async (conn) => {
    bounces.push(await conn.recvMsg<BounceRequest>());
    await conn.send(
      bounceOk ? { status: "ok", queueId: "REPORT" } : { status: "error", text: "cleanup is down" },
    );
  });
  const requests: DeliveryRequest[] = [];
  const agent = ipcListen(q.privateSocket("smtp"), async (conn) => {
    for (;;) {
      const f = await conn.recv();
      if (!f || f.kind !== "msg") return;
      const req = f.msg as unknown as DeliveryRequest;
      requests.push(req);
      await conn.send({
        recipients: req.recipients.map((r) =>
          r.address.startsWith("ok@")
            ? {
              index: r.index,
              status: "sent",
              dsn: "2.1.5",
              reason: "250 2.1.5 Ok",
              relay: "mx.remote.example[192.0.2.1]:25",
              diagnostic: "smtp; 250 2.1.5 Ok",
              remoteMta: "mx.remote.example",
            }
            : r.address.startsWith("list@")
            ? {
              index: r.index,
              status: "sent",
              dsn: "2.0.0",
              reason: "forwards to a@x",
              relay: "local",
              trace: [
                {
                  address: "a@x",
                  orcpt: r.address,
                  status: "sent",
                  dsn: "2.0.0",
                  reason: "forwards to a@x",
                  relay: "local",
                },
                {
                  address: "b@x",
                  orcpt: r.address,
                  status: "bounced",
                  dsn: "5.1.1",
                  reason: 'unknown user: "b"',
                  relay: "local",
                },
              ],
            }
            : {
              index: r.index,
              status: "deferred",
              dsn: "4.4.1",
              reason: "connect to mx.remote.example[192.0.2.1]:25: Connection refused",
              relay: "none",
            }
        ),
      });
    }
  });
  const qmgr = new Qmgr(fake.ctx, [SMTP]);
  const message = () =>
    writeQueueFile(
      q.dir("incoming"),
      {
        sender: "s@example.org",
        attrs: { verify: true },
        // A verification never goes to the content filter, which would deliver it.
        filter: "smtp:[127.0.0.1]:10025",
      },
      [{ address: "ok@remote.example" }, { address: "list@remote.example" }, {
        address: "down@remote.example",
      }],
      "From: s@example.org\r\nSubject: probe\r\n",
    );
  const gone = async (id: string) => {
    for (let i = 0; i < 200 && (await exists(q.path("active", id))); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    return !(await exists(q.path("active", id)));
  };
  try {
    await t.step("every recipient reported and done; the file removed", async () => {
      const { queueId } = await message();
      await qmgr.activate(queueId, "incoming");
      assert(await gone(queueId));
      assert(!(await exists(q.path("deferred", queueId))), "not deferred: never retried");
      assertEquals(requests.map((r) => [r.verify, r.nexthop]), [[true, "remote.example"]]);
      assertEquals(bounces.length, 1);
      assertEquals(bounces[0].op, "verify");
      assertEquals(
        bounces[0].recipients.map((r) => [r.address, r.orcpt, r.action, r.status, r.reason]),
        [
          [
            "ok@remote.example",
            undefined,
            "deliverable",
            "2.1.5",
            "delivery via mx.remote.example[192.0.2.1]:25: 250 2.1.5 Ok",
          ],
          [
            "a@x",
            "list@remote.example",
            "deliverable",
            "2.0.0",
            "delivery via local: forwards to a@x",
          ],
          [
            "b@x",
            "list@remote.example",
            "undeliverable",
            "5.1.1",
            'delivery via local: unknown user: "b"',
          ],
          [
            "down@remote.example",
            undefined,
            "undeliverable",
            "4.4.1",
            "connect to mx.remote.example[192.0.2.1]:25: Connection refused",
          ],
        ],
      );
      assertEquals(bounces[0].recipients[0].diagnostic, "smtp; 250 2.1.5 Ok");
      assert(fake.lines.includes(`${queueId}: sender delivery status notification: REPORT`));
      assert(fake.lines.includes(`${queueId}: removed`), fake.lines.join("\n"));
    });

    await t.step(
      "bounce cannot take the report: deferred whole, verified again later",
      async () => {
        bounces.length = 0;
        bounceOk = false;
        const { queueId } = await message();
        await qmgr.activate(queueId, "incoming");
        assert(await gone(queueId));
        assert(await exists(q.path("deferred", queueId)), "deferred");
        const { QueueFile } = await import("../../lib/queue/mod.ts");
        const f = await QueueFile.open(q.path("deferred", queueId));
        assertEquals(f.head.recipients.map((r) => r.done), [false, false, false]);
        f.close();
        bounceOk = true;
        await qmgr.activate(queueId, "deferred");
        assert(await gone(queueId));
        assert(!(await exists(q.path("deferred", queueId))));
        assertEquals(bounces.map((b) => [b.op, b.recipients.length]), [["verify", 4], [
          "verify",
          4,
        ]]);
      },
    );
  } finally {
    await qmgr.stop(1000);
    bounce.close();
    agent.close();
    fake.abort.abort();
    await Deno.remove(root, { recursive: true });
  }
});
