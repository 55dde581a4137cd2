import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { checkRecipient, restrictionContext } from "./restrictions.ts";

const request = (recipient: string) => ({
  client: { name: "unknown", addr: "203.0.113.5" },
  helo: "client.example",
  sender: "a@example.org",
  recipient,
});

Deno.test("restrictions: an address without domain", async (t) => {
  const main = "compatibility_level = 3.6\nmydestination = localhost\n";
  await t.step("is qualified with $myorigin for relay control", async () => {
    const local = restrictionContext(makeConfig("/x", main + "myorigin = localhost\n"), () => {});
    assertEquals(await checkRecipient(local, request("bob")), null);
    const remote = restrictionContext(
      makeConfig("/x", main + "myorigin = far.example\n"),
      () => {},
    );
    assertEquals(
      (await checkRecipient(remote, request("bob")))?.text,
      "<bob>: Relay access denied",
    );
  });
  await t.step(
    "gets @$myhostname with append_at_myorigin = no, as Postfix resolves it",
    async () => {
      const no = "myorigin = far.example\nappend_at_myorigin = no\nmyhostname = mx.example\n";
      const ours = makeConfig("/x", main + no + "mydestination = $myhostname\n");
      assertEquals(await checkRecipient(restrictionContext(ours, () => {}), request("bob")), null);
      const other = makeConfig("/x", main + no);
      assertEquals(
        (await checkRecipient(restrictionContext(other, () => {}), request("bob")))?.text,
        "<bob>: Relay access denied",
      );
    },
  );
  await t.step("is not authorized when the myorigin file cannot be read here", async () => {
    const warnings: string[] = [];
    const c = makeConfig("/x", main + "myorigin = /etc/mailname\n"); // no files: not read
    const ctx = restrictionContext(c, (m) => warnings.push(m));
    assertEquals((await checkRecipient(ctx, request("bob")))?.text, "<bob>: Relay access denied");
    assertEquals(await checkRecipient(ctx, request("postmaster")), null);
    assertMatch(warnings[0], /^myorigin file \/etc\/mailname: .*not authorized for relaying$/);
  });
});

Deno.test("restrictions: the relay decision asks the resolver", async (t) => {
  const main = "compatibility_level = 3.6\nmyhostname = mx.example\nmydestination = localhost\n" +
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n";
  await t.step(
    "a table the resolver cannot read gives 451 4.3.0, not a relay decision",
    async () => {
      const warnings: string[] = [];
      const c = makeConfig("/x", main + "relay_domains = fail:down\n");
      const v = await checkRecipient(
        restrictionContext(c, (m) => warnings.push(m)),
        request("u@x.example"),
      );
      assertEquals(v, { code: 451, dsn: "4.3.0", text: "<u@x.example>: Temporary lookup failure" });
      assertMatch(warnings[0], /^relay_domains: fail:down: lookup of "x\.example" failed/);
    },
  );
  await t.step("relay_domains tables and virtual domains authorize", async () => {
    const c = makeConfig(
      "/x",
      main + "relay_domains = inline:{r.example=ok}\nvirtual_alias_domains = va.example\n" +
        "virtual_mailbox_domains = vm.example\n",
    );
    const ctx = restrictionContext(c, () => {});
    for (const rcpt of ["u@sub.r.example", "u@va.example", "u@vm.example", "u@localhost"]) {
      assertEquals(await checkRecipient(ctx, request(rcpt)), null, rcpt);
    }
    assertEquals(
      (await checkRecipient(ctx, request("u%x.example@va.example")))?.text,
      "<u%x.example@va.example>: Relay access denied",
    );
  });
});
