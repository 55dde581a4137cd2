/** Tests for deferredForSite: which deferred messages wait for a site (postqueue -s). */
import { QueueDir, QueueFile } from "../../lib/queue/mod.ts";
import { assertEquals } from "../../tests/helpers/assert.ts";
import { writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { deferredForSite } from "./flush_site.ts";

Deno.test("deferredForSite", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "flush_site_test" });
  const q = new QueueDir(root);
  await q.create();
  const put = async (rcpts: string[], queue: "deferred" | "hold" = "deferred") =>
    (await writeQueueFile(
      q.dir(queue),
      { sender: "a@example.com" },
      rcpts.map((address) => ({ address })),
      "Subject: x\r\n\r\nbody\r\n",
    )).queueId;
  try {
    const mixed = await put(["x@other.example", "y@Relay.Example"]);
    const other = await put(["z@other.example"]);
    const literal = await put(["u@[192.0.2.1]"]);
    const held = await put(["h@relay.example"], "hold");
    const done = await put(["d@relay.example", "e@other.example"]);
    const f = await QueueFile.open(q.path("deferred", done), { write: true });
    await f.markDone([0]);
    f.close();
    await Deno.writeTextFile(q.path("deferred", "0000000000000AA"), "damaged");

    await t.step("a pending recipient in the domain, case-insensitive", async () => {
      assertEquals(await deferredForSite(q, "RELAY.example"), [mixed]);
      assertEquals(await deferredForSite(q, "other.example"), [mixed, other, done].sort());
    });
    await t.step("an address literal is a site; subdomains are not the site", async () => {
      assertEquals(await deferredForSite(q, "[192.0.2.1]"), [literal]);
      assertEquals(await deferredForSite(q, "mx.relay.example"), []);
    });
    await t.step("held mail and delivered recipients do not count", async () => {
      assertEquals((await deferredForSite(q, "relay.example")).includes(held), false);
      assertEquals((await deferredForSite(q, "relay.example")).includes(done), false);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
