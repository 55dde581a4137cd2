import { assertEquals } from "../../tests/helpers/assert.ts";
import { outcomeOf, parseStatus } from "./outcome.ts";

Deno.test("lib/testrun parseStatus: the agents' status lines, nothing else", () => {
  assertEquals(
    parseStatus(
      "4A1: to=<alice@mx.example.com>, orig_to=<info@example.com>, relay=local, delay=0.1, " +
        "delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)",
    ),
    {
      id: "4A1",
      to: "alice@mx.example.com",
      origTo: "info@example.com",
      relay: "local",
      dsn: "2.0.0",
      status: "sent",
      text: "delivered to mailbox",
    },
  );
  assertEquals(
    parseStatus(
      "4A1: to=<x@nowhere.example>, relay=none, delay=0, delays=0/0/0/0, dsn=5.1.2, " +
        "status=bounced (Host or domain name not found. (a) (b))",
    )?.text,
    "Host or domain name not found. (a) (b)",
  );
  assertEquals(parseStatus("4A1: client=x[192.0.2.1]"), null);
  assertEquals(parseStatus("4A1: capture: to=<a@b>"), null);
});

Deno.test("lib/testrun outcomeOf: own messages, what they caused, when they have settled", () => {
  const lines = [
    "AAA: client=pc1[10.1.2.3]",
    "AAA: message-id=<1@x>",
    "AAA: capture: to=<nobody@nowhere.example>",
    // The notice's cleanup lines come before qmgr names it.
    "BBB: message-id=<2@x>",
    "BBB: capture: to=<alice@mx.example.com>",
    "AAA: to=<nobody@nowhere.example>, relay=none, delay=0, delays=0/0/0/0, dsn=5.1.2, " +
    "status=bounced (Host not found)",
    "AAA: sender non-delivery notification: BBB",
    "AAA: removed",
    "CCC: capture: to=<unrelated@example.com>",
    "BBB: to=<alice@mx.example.com>, relay=local, delay=0, delays=0/0/0/0, dsn=2.0.0, " +
    "status=sent (delivered to mailbox)",
  ];
  const inQueue = new Map([["BBB", "active"], ["CCC", "incoming"]]);
  const o = outcomeOf(lines, ["AAA"], (id) => inQueue.get(id) ?? null);
  assertEquals(o.ids, ["AAA", "BBB"]);
  assertEquals(o.queued, [
    { id: "AAA", rcpt: "nobody@nowhere.example", held: false, own: true },
    { id: "BBB", rcpt: "alice@mx.example.com", held: false, own: false },
  ]);
  assertEquals(o.statuses.map((s) => `${s.id} ${s.status}`), ["AAA bounced", "BBB sent"]);
  // BBB has its status but is not removed yet.
  assertEquals(o.pending, ["BBB"]);
  inQueue.set("BBB", "deferred");
  assertEquals(outcomeOf(lines, ["AAA"], (id) => inQueue.get(id) ?? null).pending, []);
  // A message discarded before the queue settles at once.
  const d = outcomeOf(["DDD: client=x", "DDD: discard: header X: y"], ["DDD"], () => null);
  assertEquals([d.pending, d.discarded], [[], ["DDD"]]);
});
