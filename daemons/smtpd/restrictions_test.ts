import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig, restrictionItems, unsupportedRestrictions } from "../../lib/config/mod.ts";
import { Maps } from "../../lib/maps/mod.ts";
import { listedContext } from "./recipients.ts";
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

Deno.test("restrictions: access tables", async (t) => {
  const base = "compatibility_level = 3.6\nmyhostname = mx.example\nmydestination = localhost\n" +
    "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n";
  const ctxOf = (extra: string, warnings: string[] = [], opens: string[] = []) =>
    restrictionContext(makeConfig("/x", base + extra), (m) => warnings.push(m), undefined, {
      openMaps: (title, value) => {
        opens.push(value);
        return Maps.open(title, value);
      },
    });
  const req = (recipient: string, sender = "a@example.org") => ({
    client: { name: "unknown", addr: "203.0.113.5" },
    helo: "client.example",
    sender,
    recipient,
  });

  await t.step(
    "actions that need cleanup are a configuration error naming the action",
    async () => {
      for (
        const action of [
          "HOLD",
          "DISCARD",
          "REDIRECT x@y.example",
          "FILTER smtp:[h]",
          "PREPEND X-A: b",
          "BCC x@y.example",
        ]
      ) {
        const warnings: string[] = [];
        const ctx = ctxOf(
          `smtpd_recipient_restrictions = check_recipient_access inline:{ {u@localhost=${action}} }\n`,
          warnings,
        );
        assertEquals(await checkRecipient(ctx, req("u@localhost")), {
          code: 451,
          dsn: "4.3.5",
          text: "Server configuration error",
        }, action);
        assertMatch(warnings[0], new RegExp(`action ${action.split(" ")[0]} is not supported`));
      }
    },
  );

  await t.step("a table named in a result is refused, as Postfix does", async () => {
    const warnings: string[] = [];
    const ctx = ctxOf(
      "smtpd_recipient_restrictions = check_recipient_access inline:{ {u@localhost=check_sender_access inline:{x=y}} }\n",
      warnings,
    );
    assertEquals((await checkRecipient(ctx, req("u@localhost")))?.code, 451);
    assertMatch(warnings[0], /has entry with lookup table/);
  });

  await t.step("classes that name themselves stop with a configuration error", async () => {
    const warnings: string[] = [];
    const ctx = ctxOf(
      "smtpd_restriction_classes = loop\nloop = loop\nsmtpd_recipient_restrictions = loop\n",
      warnings,
    );
    assertEquals((await checkRecipient(ctx, req("u@localhost")))?.code, 451);
    assertMatch(warnings.at(-1)!, /unreasonable recursion/);
  });

  await t.step("a key with CR or LF never reaches a table", async () => {
    const ctx = ctxOf(
      "smtpd_sender_restrictions = check_sender_access pcre:{ {/./ REJECT seen} }\n" +
        "smtpd_helo_restrictions = check_helo_access pcre:{ {/./ REJECT seen} }\n",
    );
    const hostile = { ...req("u@localhost", "a\r\nb@example.org"), helo: "x\r\nRSET" };
    assertEquals(await checkRecipient(ctx, hostile), null);
    assertEquals(
      (await checkRecipient(ctx, req("u@localhost")))?.text,
      "<client.example>: Helo command rejected: seen",
    );
  });

  await t.step("tables are opened once per process", async () => {
    const opens: string[] = [];
    const ctx = ctxOf(
      "smtpd_recipient_restrictions = check_recipient_access inline:{ {u@localhost=OK} }\n",
      [],
      opens,
    );
    for (let i = 0; i < 3; i++) await checkRecipient(ctx, req("u@localhost"));
    assertEquals(opens, ["inline:{ {u@localhost=OK} }"]);
  });

  await t.step("warn_if_reject logs the next restriction's rejection instead", async () => {
    const warnings: string[] = [];
    const ctx = ctxOf(
      "smtpd_recipient_restrictions = warn_if_reject, check_recipient_access inline:{ {u@localhost=REJECT no} }\n",
      warnings,
    );
    assertEquals(await checkRecipient(ctx, req("u@localhost")), null);
    assertEquals(warnings, [
      "reject_warning: 554 5.7.1 <u@localhost>: Recipient address rejected: no",
    ]);
  });

  await t.step("client addresses are looked up with their truncations, IPv6 at ':'", async () => {
    const ctx = ctxOf(
      "smtpd_client_restrictions = check_client_access inline:{ {2001:db8=REJECT v6 net}, " +
        "{198.51=REJECT v4 net}, {.example.net=REJECT dot style} }\n",
    );
    const at = (name: string, addr: string) => ({ ...req("u@localhost"), client: { name, addr } });
    assertEquals(
      (await checkRecipient(ctx, at("unknown", "2001:db8::5")))?.text,
      "<unknown[2001:db8::5]>: Client host rejected: v6 net",
    );
    assertEquals(
      (await checkRecipient(ctx, at("unknown", "198.51.100.7")))?.text,
      "<unknown[198.51.100.7]>: Client host rejected: v4 net",
    );
    // Parent domains in Postfix's default style (smtpd_access_maps is listed): no leading dot.
    assertEquals(await checkRecipient(ctx, at("mx.example.net", "203.0.113.9")), null);
    const dots = ctxOf(
      "parent_domain_matches_subdomains =\nsmtpd_client_restrictions = " +
        "check_client_access inline:{ {.example.net=REJECT dot style} }\n",
    );
    assertEquals(
      (await checkRecipient(dots, at("mx.example.net", "203.0.113.9")))?.text,
      "<mx.example.net[203.0.113.9]>: Client host rejected: dot style",
    );
  });

  await t.step("a missing table argument is a configuration error", async () => {
    const warnings: string[] = [];
    const ctx = ctxOf(
      "smtpd_recipient_restrictions = reject_unauth_destination, check_recipient_access\n",
      warnings,
    );
    assertEquals(await checkRecipient(ctx, req("u@localhost")), {
      code: 451,
      dsn: "4.3.5",
      text: "Server configuration error",
    });
    assertMatch(warnings[0], /check_recipient_access requires a table argument/);
  });

  await t.step(
    "reject_unlisted_* without the recipient tables is a configuration error",
    async () => {
      const warnings: string[] = [];
      const ctx = ctxOf("smtpd_recipient_restrictions = reject_unlisted_recipient\n", warnings);
      assertEquals((await checkRecipient(ctx, req("u@localhost")))?.code, 451);
    },
  );
});

Deno.test("restrictions: reject_unlisted_recipient as a restriction", async () => {
  const c = makeConfig(
    "/x",
    "compatibility_level = 3.6\nmyhostname = mx.example\nmydestination = localhost\n" +
      "local_recipient_maps = inline:{ known=1 }\nsmtpd_reject_unlisted_recipient = no\n" +
      "smtpd_recipient_restrictions = reject_unlisted_recipient, reject_unauth_destination\n",
  );
  const ctx = restrictionContext(c, () => {});
  const open = (title: string, value: string) => Maps.open(title, value);
  ctx.listed = listedContext(c, ctx.resolver, ctx.rewrite, open);
  const req = (recipient: string) => ({
    client: { name: "unknown", addr: "203.0.113.5" },
    helo: "client.example",
    sender: "a@example.org",
    recipient,
  });
  assertEquals(await checkRecipient(ctx, req("known@localhost")), null);
  assertEquals(await checkRecipient(ctx, req("unknown@localhost")), {
    code: 550,
    dsn: "5.1.1",
    text: "<unknown@localhost>: Recipient address rejected: User unknown in local recipient table",
  });
});

Deno.test("restrictions: restriction list items", () => {
  assertEquals(restrictionItems("check_sender_access inline:{ {a=b c}, d=e }, reject"), [
    "check_sender_access",
    "inline:{ {a=b c}, d=e }",
    "reject",
  ]);
  assertEquals(
    unsupportedRestrictions(
      [[
        "check_client_access",
        "hash:/x",
        "myclass",
        "reject_rbl_client",
        "zen.example",
        "reject_unverified_sender",
      ]],
      ["myclass"],
    ),
    ["reject_unverified_sender"],
  );
});
