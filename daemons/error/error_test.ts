/** Tests for the error agent: every recipient bounced (or deferred as "retry"). */
import type { DeliveryRequest } from "../../lib/deliver/mod.ts";
import type { QueueFile } from "../../lib/queue/mod.ts";
import { assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { deliverError, errorText } from "./error.ts";

function request(nexthop: string): DeliveryRequest {
  return {
    op: "deliver",
    queueId: "ABC",
    path: "/nonexistent",
    sender: "s@x",
    transport: "error",
    nexthop,
    recipients: [{ index: 0, address: "a@x" }, { index: 1, address: "b@x" }],
    arrival: 1000,
    activeAt: 1000,
  };
}

const file = null as unknown as QueueFile;

Deno.test("error", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    await t.step("bounces every recipient with 5.0.0 by default", async () => {
      const { ctx, lines } = await fakeService("error", `${root}/a`);
      const st = await deliverError(request(""), file, ctx);
      assertEquals(st, [
        {
          index: 0,
          status: "bounced",
          dsn: "5.0.0",
          reason: "mail is undeliverable",
          relay: "none",
        },
        {
          index: 1,
          status: "bounced",
          dsn: "5.0.0",
          reason: "mail is undeliverable",
          relay: "none",
        },
      ]);
      assertStringIncludes(lines[0], "ABC: to=<a@x>, relay=none, ");
      assertStringIncludes(lines[0], "dsn=5.0.0, status=bounced (mail is undeliverable)");
    });
    await t.step("takes reason and DSN from the next hop", async () => {
      const { ctx } = await fakeService("error", `${root}/b`);
      const st = await deliverError(request("5.1.1 no such user here"), file, ctx);
      assertEquals([st[0].dsn, st[0].reason], ["5.1.1", "no such user here"]);
      const plain = await deliverError(request("domain is gone"), file, ctx);
      assertEquals([plain[0].dsn, plain[0].reason], ["5.0.0", "domain is gone"]);
    });
    await t.step("as the retry service, defers", async () => {
      const { ctx, lines } = await fakeService("error", `${root}/c`, { service: "retry" });
      const st = await deliverError(request(""), file, ctx);
      assertEquals(
        st.map((s) => [s.status, s.dsn, s.reason]),
        [
          ["deferred", "4.0.0", "delivery temporarily suspended"],
          ["deferred", "4.0.0", "delivery temporarily suspended"],
        ],
      );
      assertStringIncludes(lines[0], "status=deferred (delivery temporarily suspended)");
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("errorText", () => {
  assertEquals(errorText("", "5.0.0", "x"), { dsn: "5.0.0", reason: "x" });
  assertEquals(errorText("550 5.7.1 go away", "5.0.0", "x"), { dsn: "5.7.1", reason: "go away" });
  assertEquals(errorText("4.4.1 later", "5.0.0", "x"), { dsn: "5.4.1", reason: "later" });
  assertEquals(errorText("5.2.2", "4.0.0", "x"), { dsn: "4.2.2", reason: "x" });
  assertEquals(errorText("5.1 odd", "5.0.0", "x"), { dsn: "5.0.0", reason: "5.1 odd" });
});
