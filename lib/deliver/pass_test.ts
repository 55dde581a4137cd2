import { assertEquals, assertStringIncludes } from "../../tests/helpers/assert.ts";
import { type IpcConn, ipcListen } from "../ipc/mod.ts";
import type { DeliveryRequest } from "./mod.ts";
import { deliverPass, splitTransport } from "./pass.ts";

const REQ: DeliveryRequest = {
  op: "deliver",
  queueId: "ABC",
  path: "/q/active/ABC",
  sender: "s@example.com",
  transport: "local",
  nexthop: "mx.example.com",
  recipients: [
    { index: 0, address: "postmaster@mx.example.com" },
    { index: 1, address: "other@mx.example.com" },
  ],
  arrival: 1,
  activeAt: 2,
};

/** An agent on a socket that records each request and answers with `reply(req)`. */
async function withAgent(
  reply: (req: DeliveryRequest) => Record<string, unknown>,
  fn: (socket: string, seen: DeliveryRequest[]) => Promise<void>,
) {
  const dir = await Deno.makeTempDir();
  const socket = `${dir}/agent`;
  const seen: DeliveryRequest[] = [];
  const server = ipcListen(socket, async (conn: IpcConn) => {
    const req = await conn.recvMsg<DeliveryRequest>();
    seen.push(req);
    await conn.send(reply(req));
  });
  try {
    await fn(socket, seen);
  } finally {
    server.close();
    await server.done;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("deliver_pass", async (t) => {
  await t.step("transport values: service and next hop", () => {
    assertEquals(splitTransport("lmtp:unix:private/dovecot-lmtp"), {
      service: "lmtp",
      nexthop: "unix:private/dovecot-lmtp",
    });
    assertEquals(splitTransport(" lmtp "), { service: "lmtp", nexthop: "" });
  });
  await t.step("one recipient, the transport's next hop, the agent's status", async () => {
    await withAgent((req) => ({
      recipients: [{
        index: req.recipients[0].index,
        status: "sent",
        dsn: "2.0.0",
        reason: "250 2.0.0 Saved",
        relay: "h[private/dovecot-lmtp]",
      }],
    }), async (socket, seen) => {
      const r = await deliverPass(
        { socket, transport: "lmtp:unix:private/dovecot-lmtp" },
        REQ,
        { index: 0, address: "alice@mx.example.com", orcpt: "postmaster@mx.example.com" },
      );
      assertEquals(r.answered, true);
      assertEquals(r.status.status, "sent");
      assertEquals(r.status.relay, "h[private/dovecot-lmtp]");
      assertEquals(seen[0].transport, "lmtp");
      assertEquals(seen[0].nexthop, "unix:private/dovecot-lmtp");
      assertEquals(seen[0].recipients, [{
        index: 0,
        address: "alice@mx.example.com",
        orcpt: "postmaster@mx.example.com",
      }]);
      assertEquals(seen[0].queueId, "ABC");
    });
  });
  await t.step("no next hop in the value: the request's", async () => {
    await withAgent((req) => ({
      recipients: [{ index: 0, status: "deferred", dsn: "4.4.1", reason: "x", relay: "none" }],
      nexthop: req.nexthop,
    }), async (socket, seen) => {
      const r = await deliverPass({ socket, transport: "lmtp" }, REQ, REQ.recipients[0]);
      assertEquals(seen[0].nexthop, "mx.example.com");
      assertEquals([r.status.status, r.answered], ["deferred", true]);
    });
  });
  await t.step("an agent that cannot be reached or answers badly: deferred, not lost", async () => {
    const gone = await deliverPass(
      { socket: "/nonexistent/agent", transport: "lmtp:unix:x" },
      REQ,
      REQ.recipients[1],
    );
    assertEquals([gone.status.status, gone.status.dsn, gone.answered], [
      "deferred",
      "4.3.0",
      false,
    ]);
    assertStringIncludes(gone.status.reason, "mail transport unavailable: lmtp: connect to");
    assertEquals(gone.status.index, 1);
    await withAgent(() => ({ recipients: [{ index: 7, status: "sent" }] }), async (socket) => {
      const bad = await deliverPass({ socket, transport: "lmtp" }, REQ, REQ.recipients[0]);
      assertEquals(bad.status.status, "deferred");
      assertStringIncludes(bad.status.reason, "bad reply from delivery agent");
    });
  });
});
