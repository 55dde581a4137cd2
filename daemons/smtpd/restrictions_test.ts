import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig, restrictionItems, unsupportedRestrictions } from "../../lib/config/mod.ts";
import { Maps } from "../../lib/maps/mod.ts";
import { listedContext } from "./recipients.ts";
import { checkRecipient, type CheckRequest, restrictionContext } from "./restrictions.ts";

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

Deno.test("restrictions: DNS list reply filters (Postfix's ip_match)", async (t) => {
  const { parseDnsxlFilter, dnsxlArgumentProblem } = await import("../../lib/config/mod.ts");
  const matches = (pattern: string, addr: string) => {
    const m = parseDnsxlFilter(pattern);
    if (!m) throw new Error(`bad pattern ${pattern}`);
    return addr.split(".").map(Number).every((o, i) => m[i](o));
  };
  await t.step("numbers, lists and ranges per octet", () => {
    assertEquals(matches("127.0.0.2", "127.0.0.2"), true);
    assertEquals(matches("127.0.0.2", "127.0.0.3"), false);
    assertEquals(matches("127.0.0.[2..11]", "127.0.0.11"), true);
    assertEquals(matches("127.0.0.[2..11]", "127.0.0.12"), false);
    assertEquals(matches("127.0.[0;1].[2;4..5]", "127.0.1.4"), true);
    assertEquals(matches("127.0.[0;1].[2;4..5]", "127.0.1.3"), false);
  });
  await t.step("malformed patterns and weights are refused", () => {
    for (
      const p of ["127.0.0", "127.0.0.256", "127.0.0.[3..2]", "127.0.0.[]", "a.b.c.d", "1.2.3.4.5"]
    ) {
      assertEquals(parseDnsxlFilter(p), null, p);
    }
    assertEquals(dnsxlArgumentProblem("zen.example=127.0.0.[2..11]"), null);
    assertMatch(dnsxlArgumentProblem("zen.example*3") ?? "", /not supported/);
    assertMatch(dnsxlArgumentProblem("=127.0.0.2") ?? "", /empty domain/);
  });
});

Deno.test("restrictions: DNS lists and unknown_* through checkRecipient", async (t) => {
  const { fakeResolver } = await import("../../lib/dns/testing.ts");
  const q = "5.113.0.203.bl.example";
  const dns = fakeResolver({
    a: {
      [q]: ["127.0.0.2"],
      "5.113.0.203.wl.example": ["127.0.0.10"],
      [`5.113.0.203.soft.example`]: "servfail",
    },
    txt: { [q]: [["go away"]] },
  });
  const main = "compatibility_level = 3.6\nmydestination = localhost\nmynetworks = 127.0.0.0/8\n";
  const check = async (extra: string, req: CheckRequest = request("b@localhost")) => {
    const warnings: string[] = [];
    const ctx = restrictionContext(
      makeConfig("/x", main + extra),
      (m) => warnings.push(m),
      undefined,
      { dns },
    );
    return { v: await checkRecipient(ctx, req), warnings };
  };
  await t.step("a listed client: default_rbl_reply with the TXT reason", async () => {
    const { v } = await check("smtpd_client_restrictions = reject_rbl_client bl.example\n");
    assertEquals(v, {
      code: 554,
      dsn: "5.7.1",
      text: "Service unavailable; Client host [203.0.113.5] blocked using bl.example; go away",
    });
  });
  await t.step("a soft failure neither rejects nor permits", async () => {
    const { v, warnings } = await check(
      "smtpd_client_restrictions = reject_rbl_client soft.example, permit_dnswl_client soft.example, reject\n",
    );
    assertEquals(v?.code, 450); // DEFER_IF_REJECT from the allow list turns the final reject into 450
    assertEquals(v?.text, "<203.0.113.5>: Client host rejected: Service unavailable");
    assertEquals(warnings.filter((w) => w.includes("RBL lookup error")).length, 2);
  });
  await t.step("an allow list never permits a recipient we do not relay for", async () => {
    const extra =
      "smtpd_relay_restrictions = permit_dnswl_client wl.example, reject_unauth_destination\n";
    assertEquals((await check(extra)).v, null);
    assertEquals(
      (await check(extra, request("x@elsewhere.example"))).v?.text,
      "<x@elsewhere.example>: Relay access denied",
    );
  });
  await t.step(
    "reject_unauth_pipelining only when the session saw improper pipelining",
    async () => {
      const extra = "smtpd_client_restrictions = reject_unauth_pipelining\n";
      assertEquals((await check(extra)).v, null);
      assertEquals((await check(extra, { ...request("b@localhost"), pipelining: true })).v, {
        code: 503,
        dsn: "5.5.0",
        text:
          "<unknown[203.0.113.5]>: Client host rejected: Improper use of SMTP command pipelining",
      });
    },
  );
  await t.step("a DNS query the sandbox refuses is 451 4.3.5, never a pass", async () => {
    const refused = fakeResolver({});
    const no = () => Promise.reject(new Deno.errors.NotCapable("net access to 10.0.0.53:53"));
    refused.resolveA = no;
    refused.resolveMx = no;
    for (
      const extra of [
        "smtpd_client_restrictions = reject_rbl_client bl.example\n",
        "smtpd_sender_restrictions = reject_unknown_sender_domain\n",
      ]
    ) {
      const warnings: string[] = [];
      const ctx = restrictionContext(
        makeConfig("/x", main + extra),
        (m) => warnings.push(m),
        undefined,
        { dns: refused },
      );
      assertEquals(
        (await checkRecipient(ctx, request("b@localhost")))?.text,
        "Server configuration error",
      );
      assertMatch(warnings.join("\n"), /not permitted by this daemon's sandbox/);
    }
  });
  await t.step("a bad tempfail action stops the start", () => {
    let message = "";
    try {
      restrictionContext(
        makeConfig("/x", main + "unknown_address_tempfail_action = maybe\n"),
        () => {},
      );
    } catch (e) {
      message = (e as Error).message;
    }
    assertEquals(message, "bad configuration: unknown_address_tempfail_action = maybe");
  });
  await t.step(
    "a weight that slipped through (an access table result) is a configuration error",
    async () => {
      const { v, warnings } = await check(
        "smtpd_client_restrictions = check_client_access inline:{ {203.0.113.5=reject_rbl_client bl.example*2} }\n",
      );
      assertEquals(v?.text, "Server configuration error");
      assertMatch(warnings.join("\n"), /\*weight" syntax is postscreen's/);
    },
  );
});
