/** Tests for the delivery protocol helpers: Postfix's per-recipient log line. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import {
  type DeliveryRecipient,
  type DeliveryRequest,
  logStatus,
  type RecipientStatus,
  softBounce,
} from "./mod.ts";

const req: DeliveryRequest = {
  op: "deliver",
  queueId: "ABC",
  path: "/nonexistent",
  sender: "s@x",
  transport: "smtp",
  nexthop: "",
  recipients: [],
  arrival: 0,
  activeAt: 0,
};
const delays = { delay: "1", delays: "0/0/0/1" };
const sent = { index: 0, status: "sent" as const, dsn: "2.0.0", reason: "ok", relay: "none" };

Deno.test("logStatus", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    const { ctx, lines } = await fakeService("smtp", root);
    const log = (r: Omit<DeliveryRecipient, "index">) => {
      lines.length = 0;
      logStatus(ctx, req, { index: 0, ...r }, sent, delays);
      return lines;
    };
    await t.step("addresses in quoted external form", () => {
      assertEquals(log({ address: "a b@example.com", orcpt: "List x@example.com" }), [
        'ABC: to=<"a b"@example.com>, orig_to=<"List x"@example.com>, relay=none, delay=1, ' +
        "delays=0/0/0/1, dsn=2.0.0, status=sent (ok)",
      ]);
      assertEquals(
        log({ address: "v@t.example> x@o.example" })[0].slice(0, 40),
        'ABC: to=<"v@t.example> x"@o.example>, re',
      );
    });
    await t.step("orig_to only for a rewritten address, never a client's ORCPT", () => {
      assertEquals(log({ address: "a@x", orcpt: "A@X" }), [
        "ABC: to=<a@x>, relay=none, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (ok)",
      ]);
      assertEquals(log({ address: "a@x", orcpt: "rfc822;b@y>, relay=evil, status=bounced" }), [
        "ABC: to=<a@x>, relay=none, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (ok)",
      ]);
    });
    await t.step("control characters in an address stay inside the record", () => {
      assertEquals(log({ address: "a\r\nXYZ: removed@x" }), [
        'ABC: to=<"a??XYZ: removed"@x>, relay=none, delay=1, delays=0/0/0/1, dsn=2.0.0, ' +
        "status=sent (ok)",
      ]);
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("soft_bounce turns bounces into deferrals, a verification's entries too", () => {
  const st: RecipientStatus = {
    index: 0,
    status: "sent",
    dsn: "2.0.0",
    reason: "forwards to a@x",
    relay: "local",
    trace: [
      { address: "a@x", status: "sent", dsn: "2.0.0", reason: "forwards to a@x", relay: "local" },
      { address: "b@x", status: "bounced", dsn: "5.1.1", reason: "unknown user", relay: "local" },
    ],
  };
  assertEquals(softBounce(st, false), st);
  assertEquals(softBounce(st, true).trace!.map((e) => [e.status, e.dsn]), [
    ["sent", "2.0.0"],
    ["deferred", "4.1.1"],
  ]);
  assertEquals(
    softBounce({ ...st, status: "bounced", dsn: "5.7.1", trace: undefined }, true),
    { ...st, status: "deferred", dsn: "4.7.1", trace: undefined },
  );
});
