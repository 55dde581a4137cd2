/** Tests for the delivery protocol helpers: Postfix's per-recipient log line. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import {
  delayFields,
  type Delays,
  type DeliveryRecipient,
  type DeliveryRequest,
  formatSeconds,
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
const delays: Delays = { total: 1000, parts: [0, 0, 0, 1000] };
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

Deno.test("formatSeconds: Postfix's delay format (2 significant digits, resolution limit)", () => {
  const cases: [number, number, string][] = [
    // [ms, delay_logging_resolution_limit, as Postfix logs it]
    [0, 2, "0"],
    [4, 2, "0"], // below the resolution
    [5, 2, "0.01"], // rounded half up
    [12.3, 2, "0.01"],
    [12.3, 6, "0.012"], // two significant digits
    [0.1234, 6, "0.00012"],
    [0.0004, 6, "0"],
    [50, 2, "0.05"],
    [999, 2, "1"], // carries into the seconds
    [1260, 2, "1.3"], // 1 to 10 s: tenths
    [1260, 6, "1.3"],
    [9960, 2, "10"],
    [10_500, 2, "11"], // 10 s and more: whole seconds
    [123_456, 2, "123"],
    [400, 0, "0"], // limit 0: whole seconds
    [600, 0, "1"],
  ];
  for (const [ms, limit, want] of cases) {
    assertEquals(formatSeconds(ms, limit), want, `${ms} ms at ${limit}`);
  }
  assertEquals(
    delayFields({ total: 1260, parts: [12.3, 1000, 0, 247.7] }, 2),
    "delay=1.3, delays=0.01/1/0/0.25",
  );
});
