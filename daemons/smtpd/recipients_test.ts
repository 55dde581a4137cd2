/**
 * Recipient validation without a server: each address class, the
 * addresses that always pass, and a table that cannot answer (451, never
 * "unknown"). tests/interop/resolve_test.ts compares the same replies with
 * a real Postfix.
 */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { rewriteContext } from "../../lib/resolve/mod.ts";
import { Resolver } from "../../lib/resolve/mod.ts";
import { mapsOpener } from "../../lib/service/mod.ts";
import { checkListed, listedContext } from "./recipients.ts";

const BASE = "compatibility_level = 3.6\nmyhostname = mx.example\n" +
  "mydestination = $myhostname, localhost\nrecipient_delimiter = +\n" +
  "alias_maps = inline:{ postmaster=root, staff=root }\n" +
  "local_recipient_maps = inline:{ root=1 } $alias_maps\n" +
  "virtual_alias_domains = valias.example\n" +
  "virtual_alias_maps = inline:{ known@valias.example=root@localhost }\n" +
  "virtual_mailbox_domains = vbox.example\n" +
  "virtual_mailbox_maps = inline:{ box@vbox.example=box/, @catch.vbox.example=x }\n" +
  "relay_domains = relay.example\nrelay_recipient_maps = inline:{ known@relay.example=ok }\n";

function context(extra = "") {
  const c = makeConfig("/x", BASE + extra, { hostname: "mx.example" });
  const resolver = Resolver.fromConfig(c, { warn: () => {} });
  return listedContext(c, resolver, rewriteContext(c), mapsOpener(() => {}));
}

Deno.test("unknown recipients are refused per address class, as Postfix's check_rcpt_maps", async (t) => {
  const ctx = context();
  const reply = async (a: string) => (await checkListed(ctx, a, "recipient"))?.text ?? "ok";
  await t.step("local: accounts and aliases pass, others are unknown", async () => {
    assertEquals(await reply("root@localhost"), "ok");
    assertEquals(await reply("staff+list@localhost"), "ok", "the extension is ignored");
    assertEquals(await reply("mailer-daemon@mx.example"), "ok", "always accepted");
    assertEquals(
      await reply("nosuchuser@localhost"),
      "<nosuchuser@localhost>: Recipient address rejected: User unknown in local recipient table",
    );
    assertEquals(
      await reply("nosuchuser"),
      "<nosuchuser>: Recipient address rejected: User unknown in local recipient table",
      "an unqualified name is local ($myorigin)",
    );
  });
  await t.step("virtual alias, virtual mailbox and relay domains", async () => {
    assertEquals(await reply("known@valias.example"), "ok");
    assertEquals(
      await reply("x@valias.example"),
      "<x@valias.example>: Recipient address rejected: User unknown in virtual alias table",
    );
    assertEquals(await reply("box+x@vbox.example"), "ok");
    assertEquals(await reply("anyone@catch.vbox.example"), "ok", "@domain catch-all");
    assertEquals(
      await reply("nobox@vbox.example"),
      "<nobox@vbox.example>: Recipient address rejected: User unknown in virtual mailbox table",
    );
    assertEquals(await reply("known@relay.example"), "ok");
    assertEquals(
      await reply("x@relay.example"),
      "<x@relay.example>: Recipient address rejected: User unknown in relay recipient table",
    );
    assertEquals(
      await reply("x@elsewhere.example"),
      "ok",
      "the relay decision is not this check's",
    );
  });
  await t.step("codes and enhanced codes: 5.1.1 for recipients, 5.1.0 for senders", async () => {
    const r = await checkListed(ctx, "nosuchuser@localhost", "recipient");
    assertEquals([r?.code, r?.dsn], [550, "5.1.1"]);
    const s = await checkListed(ctx, "nosuchuser@localhost", "sender");
    assertEquals([s?.code, s?.dsn], [550, "5.1.0"]);
    assertEquals(s?.text.includes("Sender address rejected"), true);
  });
  await t.step("a table that cannot answer defers, never refuses", async () => {
    const broken = context("local_recipient_maps = fail:down\n");
    const r = await checkListed(broken, "nosuchuser@localhost", "recipient");
    assertEquals(r, {
      code: 451,
      dsn: "4.3.0",
      text: "<nosuchuser@localhost>: Temporary lookup failure",
    });
  });
  await t.step("empty local_recipient_maps: every local name is accepted", async () => {
    const open = context("local_recipient_maps =\n");
    assertEquals(await checkListed(open, "anyone@localhost", "recipient"), null);
  });
});

Deno.test("a relocated user is refused with the resolver's 5.1.6", async () => {
  const ctx = context("relocated_maps = inline:{ moved@localhost=new@else.example }\n");
  assertEquals(await checkListed(ctx, "moved@localhost", "recipient"), {
    code: 550,
    dsn: "5.1.6",
    text: "<moved@localhost>: Recipient address rejected: User has moved to new@else.example",
  });
});
