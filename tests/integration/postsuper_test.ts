/**
 * postsuper against a running instance: mail deferred by a dead relayhost
 * is put on hold (mailq marks it "!", and qmgr leaves it alone), one more
 * deferred message is deleted (gone from mailq, "removed" logged by
 * postsuper), and the held mail, once released, is delivered when the
 * relay comes up.
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "postsuper holds, deletes and releases deferred mail in a running instance",
  ...opts,
  fn: async (t) => {
    const relayPort = freePort();
    const inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${relayPort}` });
    const sink = new TestSink(relayPort);
    const ids = (queue: string) =>
      [...Deno.readDirSync(`${inst.queue}/${queue}`)].map((e) => e.name).sort();
    const mailq = async () => (await inst.command("postqueue.ts", ["-p"])).stdout;
    /** Runs postsuper until `done` holds: qmgr may have a message in active/ for a moment. */
    const postsuperUntil = async (args: string[], done: () => boolean, what: string) => {
      await waitUntil(
        async () => {
          const r = await inst.command("postsuper.ts", args);
          assertEquals(r.code, 0, r.stderr);
          return done();
        },
        20_000,
        what,
      );
    };
    const send = async (body: string) => {
      const r = await smtpSend(inst.port, { from: "a@example.com", to: ["b@example.net"], body });
      assertEquals(r.code, 250, r.text);
    };
    try {
      await t.step("two deferred messages are put on hold", async () => {
        await send("Subject: one\r\n\r\none\r\n");
        await send("Subject: two\r\n\r\ntwo\r\n");
        await waitUntil(() => ids("deferred").length === 2, 20_000, "two deferrals");
        await postsuperUntil(["-h", "ALL"], () => ids("hold").length === 2, "both on hold");
        const q = await mailq();
        for (const id of ids("hold")) assertMatch(q, new RegExp(`^${id}!`, "m"));
        const held = new RegExp(`postsuper\\[\\d+\\]: ${ids("hold")[0]}: placed on hold`);
        assertMatch(await waitForLog(inst, held, 10_000), held);
      });

      let third = "";
      await t.step("another deferred message is deleted", async () => {
        await send("Subject: three\r\n\r\nthree\r\n");
        await waitUntil(() => ids("deferred").length === 1, 20_000, "third deferral");
        third = ids("deferred")[0];
        await postsuperUntil(
          ["-d", "ALL", "deferred"],
          () => ![...ids("deferred"), ...ids("active")].includes(third),
          "third deleted",
        );
        assertEquals((await mailq()).includes(third), false);
        const removed = new RegExp(`postsuper\\[\\d+\\]: ${third}: removed`);
        assertMatch(await waitForLog(inst, removed, 10_000), removed);
        assertEquals(ids("hold").length, 2);
      });

      await t.step("released mail is delivered once the relay is up", async () => {
        const r = await inst.command("postsuper.ts", ["-H", "ALL"]);
        assertEquals(r.code, 0, r.stderr);
        assertEquals(r.stderr, "postsuper: Released from hold: 2 messages\n");
        sink.start();
        await waitUntil(() => sink.messages.length === 2, 30_000, "delivery of released mail");
        await waitUntil(
          async () => (await mailq()) === "Mail queue is empty\n",
          10_000,
          "empty queue",
        );
        const subjects = sink.messages.map((m) => /Subject: (\w+)/.exec(m.data)?.[1]).sort();
        assertEquals(subjects, ["one", "two"]);
      });
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});
