/**
 * Tests for qmgr's handling of queue files it cannot use (a corrupt file
 * is moved to corrupt/ and logged, and when that move fails the log says
 * so and the file stays where it is, never deleted and never scheduled),
 * resolution, recovery at start, the hold queue and the active queue limits.
 */
import { exists } from "../../tests/helpers/fs.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { fakeService, unixService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import type { DeliveryRequest } from "../../lib/deliver/mod.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { newQueueId } from "../../lib/queue/mod.ts";
import { Qmgr } from "./qmgr.ts";

const GARBAGE = new TextEncoder().encode("this is not a queue file\n");

Deno.test("qmgr: corrupt queue files", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    const { ctx, lines } = await fakeService("qmgr", root);
    const q = ctx.queue;
    const qmgr = new Qmgr(ctx, []);

    await t.step("a corrupt file is moved to corrupt/ and logged", async () => {
      const id = newQueueId();
      await Deno.writeFile(q.path("incoming", id), GARBAGE);
      await qmgr.activate(id, "incoming");
      assertEquals(await Deno.readFile(q.path("corrupt", id)), GARBAGE);
      assert(!(await exists(q.path("active", id))));
      assertEquals(lines.filter((l) => l.includes(id)).length, 1);
      assert(
        lines.some((l) => l.startsWith(`warning: ${id}: corrupt queue file moved to corrupt/:`)),
      );
      assertEquals(qmgr.active.size, 0);
    });

    await t.step("a failed move is logged as such and the file stays in active/", async () => {
      lines.length = 0;
      const id = newQueueId();
      await Deno.writeFile(q.path("incoming", id), GARBAGE);
      // A directory in the way makes the rename fail (EISDIR), even for root.
      await Deno.mkdir(`${q.path("corrupt", id)}/occupied`, { recursive: true });
      await qmgr.activate(id, "incoming");
      assertEquals(await Deno.readFile(q.path("active", id)), GARBAGE, "kept, not deleted");
      assert(!lines.some((l) => l.includes("moved to corrupt/")), lines.join("\n"));
      const line = lines.find((l) => l.includes(id)) ?? "";
      assert(
        line.startsWith(`error: ${id}: corrupt queue file (`) &&
          line.includes("cannot move it to corrupt/: Is a directory") &&
          line.endsWith("; left in active/"),
        line,
      );
      assertEquals(qmgr.active.size, 0, "never scheduled");
      assertEquals(qmgr.scheduler.queueCount, 0, "never delivered");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("qmgr: recipients are resolved with lib/resolve", async (t) => {
  const root = await Deno.makeTempDir();
  const setup = async (mainCf: string, address: string) => {
    const fake = await fakeService("qmgr", root + "/" + newQueueId(), {
      mainCf: "mydestination = localhost\n" + mainCf,
    });
    const qmgr = new Qmgr(fake.ctx, []);
    const { queueId } = await writeQueueFile(
      fake.ctx.queue.dir("incoming"),
      { sender: "a@example.org" },
      [{ address }],
      "Subject: x\r\n\r\nx\r\n",
    );
    return { ...fake, qmgr, id: queueId };
  };
  /** The defer log of a message that went to deferred/, once settled. */
  const deferLog = async (f: Awaited<ReturnType<typeof setup>>) => {
    for (let i = 0; i < 100 && !(await exists(f.ctx.queue.path("deferred", f.id))); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    return (await Deno.readTextFile(f.ctx.queue.deferLog(f.id))).trim().split("\n")
      .map((l) => JSON.parse(l));
  };
  try {
    await t.step("a table that cannot answer defers the recipient with 4.3.0", async () => {
      const f = await setup("transport_maps = fail:down\n", "u@remote.example");
      await f.qmgr.activate(f.id, "incoming");
      const [entry] = await deferLog(f);
      assertEquals(
        [entry.dsn, entry.reason],
        ["4.3.0", "address resolver failure: transport_maps lookup failure"],
      );
      assert(
        f.lines.some((l) => l.startsWith(`warning: ${f.id}: transport_maps: fail:down: lookup`)),
        f.lines.join("\n"),
      );
      assert(
        f.lines.some((l) => l.includes("status=deferred (address resolver failure: transport")),
      );
      await f.qmgr.stop(1000);
    });
    await t.step("transport_maps picks the transport and next hop", async () => {
      const f = await setup(
        "transport_maps = inline:{remote.example=custom:[10.0.0.1]}\n",
        "u%remote.example@localhost",
      );
      await f.qmgr.activate(f.id, "incoming");
      const [entry] = await deferLog(f);
      assertEquals(entry.dsn, "4.3.0");
      assert(entry.reason.includes('transport "custom" is not defined in master.cf'), entry.reason);
      await f.qmgr.stop(1000);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("qmgr: recovery, the hold queue and the active queue limits", async (t) => {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("qmgr", root, {
    mainCf: "mydestination = localhost\nqmgr_message_active_limit = 2\n" +
      "qmgr_message_recipient_limit = 3\n",
  });
  const q = fake.ctx.queue;
  // An smtp agent that answers only when the test lets it.
  const waiting: (() => void)[] = [];
  const agent = ipcListen(q.privateSocket("smtp"), async (conn) => {
    for (;;) {
      const f = await conn.recv();
      if (!f || f.kind !== "msg") return;
      const req = f.msg as unknown as DeliveryRequest;
      await new Promise<void>((r) => waiting.push(r));
      await conn.send({
        recipients: req.recipients.map((r) => ({
          index: r.index,
          status: "sent",
          dsn: "2.0.0",
          reason: "250 2.0.0 Ok",
          relay: "mx[192.0.2.1]:25",
        })),
      });
    }
  });
  const qmgr = new Qmgr(fake.ctx, [unixService("smtp")]);
  const message = (dir: string, n: number) =>
    writeQueueFile(
      dir,
      { sender: "s@example.org" },
      Array.from({ length: n }, (_, i) => ({ address: `u${i}@remote.example` })),
      "Subject: x\r\n\r\nx\r\n",
    );
  const until = async (what: string, pred: () => boolean | Promise<boolean>) => {
    for (let i = 0; i < 300 && !(await pred()); i++) await new Promise((r) => setTimeout(r, 10));
    assert(await pred(), what);
  };
  try {
    await t.step("files left in active/ go back to incoming/ at start", async () => {
      const { queueId } = await message(q.dir("active"), 1);
      await qmgr.recover();
      assert(await exists(q.path("incoming", queueId)));
      assert(!(await exists(q.path("active", queueId))));
      assert(
        fake.lines.includes("recovered 1 message(s) from the active queue"),
        fake.lines.join(),
      );
      await Deno.remove(q.path("incoming", queueId));
    });

    const held = await message(q.dir("hold"), 1);
    const a = await message(q.dir("incoming"), 2);
    const b = await message(q.dir("incoming"), 2);
    const c = await message(q.dir("incoming"), 1);

    await t.step(
      "qmgr_message_recipient_limit: no new message once 3 recipients are active",
      async () => {
        await qmgr.scanIncoming();
        // a (2 recipients) leaves room; b makes 4; c waits though the message limit is 2.
        assertEquals([...qmgr.active.keys()].sort(), [a.queueId, b.queueId].sort());
        assert(await exists(q.path("incoming", c.queueId)));
      },
    );

    await t.step("settled messages make room; hold/ is never scanned", async () => {
      await until("both deliveries waiting", () => waiting.length === 2);
      for (const go of waiting.splice(0)) go();
      await until("c activated", () => qmgr.active.has(c.queueId));
      await until("c's delivery waiting", () => waiting.length === 1);
      for (const go of waiting.splice(0)) go();
      await until("all removed", () => qmgr.active.size === 0);
      await qmgr.scanIncoming();
      await qmgr.scanDeferred(true);
      assert(await exists(q.path("hold", held.queueId)), "held mail stays in hold/");
      assertEquals(qmgr.active.size, 0);
      for (const id of [a.queueId, b.queueId, c.queueId]) {
        assert(fake.lines.includes(`${id}: removed`), id);
      }
    });
  } finally {
    for (const go of waiting.splice(0)) go();
    await qmgr.stop(1000);
    agent.close();
    fake.abort.abort();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("qmgr: feedback comes from site failures, not from a server's 4XX replies", async (t) => {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("qmgr", root, { mainCf: "mydestination = localhost\n" });
  const q = fake.ctx.queue;
  // Greylisting answers 450 to every recipient: a server that works (relay set).
  // "down" is a connection refused: no server reached (relay=none).
  let mode: "greylist" | "down" = "greylist";
  const agent = ipcListen(q.privateSocket("smtp"), async (conn) => {
    for (;;) {
      const f = await conn.recv();
      if (!f || f.kind !== "msg") return;
      const req = f.msg as unknown as DeliveryRequest;
      await new Promise((r) => setTimeout(r, 20)); // all six in flight together
      await conn.send({
        recipients: req.recipients.map((r) =>
          mode === "greylist"
            ? {
              index: r.index,
              status: "deferred",
              dsn: "4.2.0",
              reason: "host mx[192.0.2.1] said: 450 4.2.0 Greylisted (in reply to RCPT TO command)",
              relay: "mx[192.0.2.1]:25",
            }
            : {
              index: r.index,
              status: "deferred",
              dsn: "4.4.1",
              reason: "connect to mx[192.0.2.1]:25: Connection refused",
              relay: "none",
            }
        ),
      });
    }
  });
  const qmgr = new Qmgr(fake.ctx, [unixService("smtp")]);
  const sixMessages = async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const { queueId } = await writeQueueFile(
        q.dir("incoming"),
        { sender: "s@example.org" },
        [{ address: `u${i}@remote.example` }],
        "Subject: x\r\n\r\nx\r\n",
      );
      ids.push(queueId);
    }
    await qmgr.scanIncoming();
    for (let i = 0; i < 300 && qmgr.active.size > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(qmgr.active.size, 0);
    return ids;
  };
  try {
    await t.step("4XX from a server: every message is tried, none suspended", async () => {
      await sixMessages();
      assert(
        !fake.lines.some((l) => l.includes("delivery temporarily suspended")),
        fake.lines.join("\n"),
      );
    });
    await t.step("no server reached: dead after a cohort, the rest suspended", async () => {
      mode = "down";
      await sixMessages();
      // Window 5: 1/5 + 1/3 + 1/2 of a cohort is dead; the sixth waited and is suspended.
      const suspended = fake.lines.filter((l) => l.includes("delivery temporarily suspended"));
      assertEquals(suspended.length, 1, fake.lines.join("\n"));
    });
  } finally {
    await qmgr.stop(1000);
    agent.close();
    fake.abort.abort();
    await Deno.remove(root, { recursive: true });
  }
});
