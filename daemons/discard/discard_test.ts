/** Tests for the discard agent: every recipient sent, reason from the next hop. */
import type { DeliveryRequest } from "../../lib/deliver/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { deliverDiscard } from "./discard.ts";

function request(nexthop: string): DeliveryRequest {
  return {
    op: "deliver",
    queueId: "ABC",
    path: "/nonexistent",
    sender: "s@x",
    transport: "discard",
    nexthop,
    recipients: [{ index: 0, address: "a@x" }, { index: 3, address: "b@x", orcpt: "B@y" }],
    arrival: 1000,
    activeAt: 1000,
  };
}

Deno.test("discard", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    const { ctx, lines } = await fakeService("discard", root);
    const file = null as unknown as QueueFile;
    await t.step("reports every recipient sent with the default reason", async () => {
      const st = await deliverDiscard(request(""), file, ctx, { now: () => 2500 });
      assertEquals(st, [
        { index: 0, status: "sent", dsn: "2.0.0", reason: "discarded", relay: "none" },
        { index: 3, status: "sent", dsn: "2.0.0", reason: "discarded", relay: "none" },
      ]);
      assertEquals(
        lines[0],
        "ABC: to=<a@x>, relay=none, delay=1.5, delays=0/1.5/0/0, dsn=2.0.0, status=sent (discarded)",
      );
      assertMatch(
        lines[1],
        /^ABC: to=<b@x>, orig_to=<B@y>, relay=none, .* status=sent \(discarded\)$/,
      );
    });
    await t.step("uses the next hop as the reason", async () => {
      const st = await deliverDiscard(request("spam trap"), file, ctx);
      assertEquals(st.map((s) => s.reason), ["spam trap", "spam trap"]);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
