/**
 * Tests for forwarding: grouping by (Delivered-To, sender) and the header
 * lines put in front of a forwarded message. Submission through cleanup
 * is tested end to end in local_test.ts.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import type { Forward } from "./alias.ts";
import { forwardHeaders, groupForwards } from "./forward.ts";

const fwd = (address: string, extra: Partial<Forward> = {}): Forward => ({
  address,
  sender: "s@example.org",
  delivered: "list@here.example",
  ownerSender: false,
  ...extra,
});

Deno.test("groupForwards: one message per Delivered-To and sender", () => {
  const groups = groupForwards([
    fwd("a@x.example", { orcpt: "list@here.example", notify: ["FAILURE"] }),
    fwd("b@x.example"),
    fwd("c@x.example", { sender: "owner-list@here.example", ownerSender: true }),
    fwd("d@x.example", { delivered: "LIST@here.example" }),
    fwd("e@x.example", { delivered: "other@here.example" }),
  ]);
  assertEquals(groups, [
    {
      delivered: "list@here.example",
      sender: "s@example.org",
      ownerSender: false,
      recipients: [
        { address: "a@x.example", orcpt: "list@here.example", notify: ["FAILURE"] },
        { address: "b@x.example" },
        { address: "d@x.example" },
      ],
    },
    {
      delivered: "list@here.example",
      sender: "owner-list@here.example",
      ownerSender: true,
      recipients: [{ address: "c@x.example" }],
    },
    {
      delivered: "other@here.example",
      sender: "s@example.org",
      ownerSender: false,
      recipients: [{ address: "e@x.example" }],
    },
  ]);
});

Deno.test("forwardHeaders: Received and a lowercased, quoted, one-line Delivered-To", () => {
  const opts = { hostname: "mx.here.example", mailName: "Postfix", date: "Tue,  1 Dec 2026" };
  assertEquals(
    forwardHeaders("4F3A", "Alice@Here.Example", opts),
    "Received: by mx.here.example (Postfix)\r\n\tid 4F3A; Tue,  1 Dec 2026\r\n" +
      "Delivered-To: alice@here.example\r\n",
  );
  assertEquals(
    forwardHeaders("4F3A", "Joe Smith\r\nX-Evil: 1@here.example", opts).split("\r\n")[2],
    'Delivered-To: "joe smith??x-evil: 1"@here.example',
  );
});
