import { assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { checkRecipient, type CheckRequest, restrictionContext } from "./restrictions.ts";
import { findServerAccess, mailhostAddress, parseHostsByName } from "./server_access.ts";

/** One zone for every case: MX, NS with parents, A-only, failures. */
const zone = () =>
  fakeResolver({
    mx: {
      "mx.example": [{ preference: 10, exchange: "mail.mx.example." }],
      "two.example": [
        { preference: 10, exchange: "a.two.example" },
        { preference: 20, exchange: "b.two.example" },
      ],
      "nullmx.example": [{ preference: 0, exchange: "." }],
      "ipmx.example": [{ preference: 10, exchange: "192.0.2.77" }],
      "tmp.example": "timeout",
      "lame.example": [{ preference: 10, exchange: "nowhere.example" }],
      "bogus.example": [{ preference: 10, exchange: "zero.example" }],
    },
    ns: {
      "example": ["ns.tld-servers.test"],
      "ns.example": ["ns1.ns.example.", "ns2.ns.example."],
      "tmpns.example": "timeout",
    },
    a: {
      "mail.mx.example": ["192.0.2.10"],
      "a.two.example": ["192.0.2.20"],
      "b.two.example": ["192.0.2.21"],
      "plain.example": ["198.51.100.7"],
      "ns1.ns.example": ["192.0.2.53"],
      "ns2.ns.example": ["192.0.2.54"],
      "ns.tld-servers.test": ["203.0.113.53"],
      "tmpa.example": "timeout",
      "zero.example": ["0.1.2.3"],
    },
    aaaa: { "v6.example": ["2001:db8::25"] },
  });

function context(restrictions: string, extra = "") {
  const warnings: string[] = [];
  const dns = zone();
  const c = makeConfig(
    "/x",
    "compatibility_level = 3.6\nmydestination = localhost\ninet_protocols = ipv4\n" +
      "smtpd_relay_restrictions = reject_unauth_destination\n" +
      "smtpd_relay_before_recipient_restrictions = no\n" +
      `smtpd_recipient_restrictions = ${restrictions}\n${extra}`,
  );
  const ctx = restrictionContext(c, (m) => warnings.push(m), undefined, {
    dns,
    hostAddresses: (n) => parseHostsByName("192.0.2.99 hosted.example\n").get(n),
  });
  return { ctx, warnings, dns };
}

const req = (over: Partial<CheckRequest> = {}): CheckRequest => ({
  client: { name: "mx.example", addr: "203.0.113.5" },
  helo: "helo.example",
  sender: "someone@mx.example",
  recipient: "root@localhost",
  ...over,
});

const text = async (restrictions: string, r: CheckRequest = req(), extra = "") => {
  const { ctx, warnings } = context(restrictions, extra);
  const v = await checkRecipient(ctx, r);
  return { reply: v && `${v.code} ${v.dsn} ${v.text}`, warnings };
};

Deno.test("check_*_mx_access", async (t) => {
  await t.step("the MX host's name, then its address", async () => {
    assertEquals(
      (await text("check_sender_mx_access inline:{{mail.mx.example=REJECT bad mx}}")).reply,
      "554 5.7.1 <someone@mx.example>: Sender address rejected: bad mx",
    );
    assertEquals(
      (await text("check_sender_mx_access cidr:{{192.0.2.0/28 REJECT by address}}")).reply,
      "554 5.7.1 <someone@mx.example>: Sender address rejected: by address",
    );
    // Truncated addresses, as check_client_access: 192.0.2 matches 192.0.2.10.
    assertEquals(
      (await text("check_sender_mx_access inline:{{192.0.2=REJECT net}}")).reply,
      "554 5.7.1 <someone@mx.example>: Sender address rejected: net",
    );
  });
  await t.step(
    "parent domains of the MX host match (parent_domain_matches_subdomains)",
    async () => {
      assertEquals(
        (await text("check_sender_mx_access inline:{{mx.example=REJECT parent}}")).reply,
        "554 5.7.1 <someone@mx.example>: Sender address rejected: parent",
      );
    },
  );
  await t.step("the first key found decides, DUNNO included", async () => {
    const r = req({ sender: "x@two.example" });
    assertEquals(
      (await text(
        "check_sender_mx_access inline:{{a.two.example=DUNNO},{b.two.example=REJECT}}",
        r,
      )).reply,
      null,
    );
    assertEquals(
      (await text("check_sender_mx_access inline:{{b.two.example=REJECT second}}", r)).reply,
      "554 5.7.1 <x@two.example>: Sender address rejected: second",
    );
  });
  await t.step("no MX: the domain is its own MX host (name, then addresses)", async () => {
    const r = req({ sender: "x@plain.example" });
    assertEquals(
      (await text("check_sender_mx_access inline:{{plain.example=REJECT self}}", r)).reply,
      "554 5.7.1 <x@plain.example>: Sender address rejected: self",
    );
    assertEquals(
      (await text("check_sender_mx_access inline:{{198.51.100.7=REJECT self addr}}", r)).reply,
      "554 5.7.1 <x@plain.example>: Sender address rejected: self addr",
    );
  });
  await t.step("the access(5) example: an MX host in 0.0.0.0/8 (cidr)", async () => {
    const table = "cidr:{{0.0.0.0/8 REJECT Domain MX in broadcast network}, " +
      "{127.0.0.0/8 REJECT Domain MX in loopback network}}";
    assertEquals(
      (await text(`check_sender_mx_access ${table}`, req({ sender: "x@bogus.example" }))).reply,
      "554 5.7.1 <x@bogus.example>: Sender address rejected: Domain MX in broadcast network",
    );
    assertEquals((await text(`check_sender_mx_access ${table}`)).reply, null);
  });
  await t.step("IPv6 addresses with inet_protocols = all, truncated at ':'", async () => {
    const r = req({ helo: "v6.example" });
    assertEquals(
      (await text(
        "check_helo_a_access inline:{{2001:db8=REJECT v6 net}}",
        r,
        "inet_protocols = all\n",
      )).reply,
      "554 5.7.1 <v6.example>: Helo command rejected: v6 net",
    );
    // Not looked up with inet_protocols = ipv4.
    assertEquals((await text("check_helo_a_access inline:{{2001:db8=REJECT}}", r)).reply, null);
  });
  await t.step("a null MX checks nothing", async () => {
    const r = req({ sender: "x@nullmx.example" });
    assertEquals((await text("check_sender_mx_access static:REJECT", r)).reply, null);
  });
  await t.step("an MX record naming an address is looked up as an address", async () => {
    const r = req({ sender: "x@ipmx.example" });
    assertEquals(
      (await text("check_sender_mx_access inline:{{192.0.2.77=REJECT ip mx}}", r)).reply,
      "554 5.7.1 <x@ipmx.example>: Sender address rejected: ip mx",
    );
  });
  await t.step("a malformed name is not looked up: no MX, no address (as Postfix)", async () => {
    const { ctx, warnings, dns } = context("check_helo_mx_access inline:{{bad..name=REJECT}}");
    const v = await checkRecipient(ctx, req({ helo: "bad..name" }));
    assertEquals(v?.text, "<bad..name>: Helo command rejected: Access denied");
    assertEquals(dns.queries, []);
    const other = context("check_helo_mx_access inline:{{x=REJECT}}");
    assertEquals(await checkRecipient(other.ctx, req({ helo: "bad..name" })), null);
    assertEquals(other.warnings, [
      "Unable to look up MX host bad..name for Helo command bad..name: Name or service not known",
    ]);
    assertEquals([warnings, other.dns.queries], [[], []]);
  });
  await t.step("a temporary MX failure logs and checks nothing", async () => {
    const { reply, warnings } = await text(
      "check_sender_mx_access static:REJECT",
      req({ sender: "x@tmp.example" }),
    );
    assertEquals(reply, null);
    assertEquals(warnings, [
      "Unable to look up MX host for tmp.example: Host not found, try again",
    ]);
  });
  await t.step("an MX host without address: its name is checked, then a warning", async () => {
    const r = req({ sender: "x@lame.example" });
    const { reply, warnings } = await text("check_sender_mx_access inline:{{1.2.3.4=REJECT}}", r);
    assertEquals(reply, null);
    assertEquals(warnings, [
      "Unable to look up MX host nowhere.example for Sender address x@lame.example: " +
      "Name or service not known",
    ]);
  });
  await t.step("an address literal is its own MX; the null sender is not checked", async () => {
    assertEquals(
      (await text(
        "check_sender_mx_access inline:{{192.0.2.1=REJECT literal}}",
        req({ sender: "x@[192.0.2.1]" }),
      )).reply,
      "554 5.7.1 <x@[192.0.2.1]>: Sender address rejected: literal",
    );
    assertEquals(
      (await text("check_sender_mx_access static:REJECT", req({ sender: "" }))).reply,
      null,
    );
  });
  await t.step("OK is a configuration error (these checks may only refuse)", async () => {
    const { reply, warnings } = await text("check_sender_mx_access static:OK");
    assertEquals(reply, "451 4.3.5 Server configuration error");
    assertEquals(warnings, [
      "restriction check_sender_mx_access returns OK for someone@mx.example",
      "this is not allowed for security reasons",
      "use DUNNO instead of OK if you want to make an exception",
    ]);
  });
  await t.step("/etc/hosts before DNS for the host's addresses", async () => {
    assertEquals(
      (await text(
        "check_helo_a_access inline:{{192.0.2.99=REJECT from hosts}}",
        req({ helo: "hosted.example" }),
      )).reply,
      "554 5.7.1 <hosted.example>: Helo command rejected: from hosts",
    );
  });
});

Deno.test("check_*_ns_access and check_*_a_access", async (t) => {
  await t.step("NS: the name servers' names and addresses", async () => {
    const r = req({ recipient: "u@ns.example" });
    assertEquals(
      (await text("check_recipient_ns_access inline:{{ns2.ns.example=REJECT ns}}", r)).reply,
      "554 5.7.1 <u@ns.example>: Recipient address rejected: ns",
    );
    assertEquals(
      (await text("check_recipient_ns_access inline:{{192.0.2.53=REJECT ns addr}}", r)).reply,
      "554 5.7.1 <u@ns.example>: Recipient address rejected: ns addr",
    );
  });
  await t.step("NS: without NS records, the parent domain's", async () => {
    const { ctx, dns } = context("check_helo_ns_access inline:{{ns.tld-servers.test=REJECT tld}}");
    const v = await checkRecipient(ctx, req({ helo: "deep.sub.plain.example" }));
    assertEquals(v?.text, "<deep.sub.plain.example>: Helo command rejected: tld");
    assertEquals(dns.queries.filter((q) => q.startsWith("NS")), [
      "NS deep.sub.plain.example",
      "NS sub.plain.example",
      "NS plain.example",
      "NS example",
    ]);
  });
  await t.step("NS: none anywhere logs the name and checks nothing", async () => {
    const { reply, warnings } = await text(
      "check_sender_ns_access static:REJECT",
      req({ sender: "a@b.nowhere" }),
    );
    assertEquals(reply, null);
    assertEquals(warnings, ["Unable to look up NS host for a@b.nowhere: Host not found"]);
  });
  await t.step("NS: a temporary failure names the domain asked", async () => {
    const { warnings } = await text(
      "check_sender_ns_access static:REJECT",
      req({ sender: "a@tmpns.example" }),
    );
    assertEquals(warnings, [
      "Unable to look up NS host for tmpns.example: Host not found, try again",
    ]);
  });
  await t.step("NS: an address literal has no name servers", async () => {
    const r = req({ sender: "a@[192.0.2.1]" });
    assertEquals((await text("check_sender_ns_access static:REJECT", r)).reply, null);
  });
  await t.step("A: only addresses, never the name", async () => {
    const r = req({ helo: "plain.example" });
    assertEquals(
      (await text("check_helo_a_access inline:{{plain.example=REJECT}}", r)).reply,
      null,
    );
    assertEquals(
      (await text("check_helo_a_access cidr:{{198.51.100.0/24 REJECT a}}", r)).reply,
      "554 5.7.1 <plain.example>: Helo command rejected: a",
    );
    // A bare address as HELO is its own address; no lookup, no warning.
    const bare = await text(
      "check_helo_a_access inline:{{192.0.2.5=REJECT bare}}",
      req({ helo: "192.0.2.5" }),
    );
    assertEquals(bare.reply, "554 5.7.1 <192.0.2.5>: Helo command rejected: bare");
    const tmp = await text("check_helo_a_access static:REJECT", req({ helo: "tmpa.example" }));
    assertEquals([tmp.reply, tmp.warnings], [null, []]);
  });
  await t.step("client and reverse client: not for an unknown name", async () => {
    const unknown = req({ client: { name: "unknown", addr: "203.0.113.5" } });
    assertEquals((await text("check_client_a_access static:REJECT", unknown)).reply, null);
    assertEquals(
      (await text("check_client_mx_access inline:{{mail.mx.example=REJECT}}")).reply,
      "554 5.7.1 <mx.example[203.0.113.5]>: Client host rejected: Access denied",
    );
    const reverse = req({
      client: { name: "unknown", addr: "203.0.113.5", reverseName: "x.plain.example" },
    });
    assertEquals(
      (await text(
        "check_reverse_client_hostname_mx_access inline:{{x.plain.example=REJECT}}",
        reverse,
      ))
        .reply,
      "554 5.7.1 <x.plain.example>: Unverified Client host rejected: Access denied",
    );
  });
  await t.step("a DNS query the sandbox refuses is a configuration error", async () => {
    const { ctx, warnings } = context("check_sender_mx_access static:REJECT");
    ctx.servers.dns = {
      ...ctx.servers.dns,
      resolveMx: () => Promise.reject(new Deno.errors.NotCapable("net")),
    };
    const v = await checkRecipient(ctx, req());
    assertEquals(v?.text, "Server configuration error");
    assertMatch(warnings[0], /not permitted by this daemon's sandbox/);
  });
});

Deno.test("check_sasl_access", async (t) => {
  const sasl = { username: "alice@example.org", method: "PLAIN" };
  await t.step("the login name as the whole key, no parents or partial keys", async () => {
    const r = req({ sasl });
    assertEquals(
      (await text(
        "check_sasl_access inline:{{alice@example.org=REJECT no}}",
        r,
        "smtpd_sasl_auth_enable = yes\n",
      )).reply,
      "554 5.7.1 <alice@example.org>: SASL login name rejected: no",
    );
    assertEquals(
      (await text(
        "check_sasl_access inline:{{example.org=REJECT},{alice@=REJECT},{alice=REJECT}}",
        r,
        "smtpd_sasl_auth_enable = yes\n",
      )).reply,
      null,
    );
  });
  await t.step("OK permits; nothing without a login", async () => {
    const ok = await text(
      "check_sasl_access inline:{{alice@example.org=OK}}, reject",
      req({ sasl }),
      "smtpd_sasl_auth_enable = yes\n",
    );
    assertEquals(ok.reply, null);
    assertEquals(
      (await text(
        "check_sasl_access static:REJECT",
        req({ sasl: null }),
        "smtpd_sasl_auth_enable = yes\n",
      )).reply,
      null,
    );
  });
  await t.step("non-printable characters of the name are shown as _", async () => {
    assertEquals(
      (await text(
        "check_sasl_access static:REJECT",
        req({ sasl: { username: "a\u00e9\u0001", method: "PLAIN" } }),
        "smtpd_sasl_auth_enable = yes\n",
      )).reply,
      "554 5.7.1 <a__>: SASL login name rejected: Access denied",
    );
  });
  await t.step("without smtpd_sasl_auth_enable: ignored with Postfix's warning", async () => {
    const { reply, warnings } = await text("check_sasl_access static:REJECT", req({ sasl }));
    assertEquals(reply, null);
    assertEquals(warnings, ["restriction `check_sasl_access' ignored: no SASL support"]);
  });
});

Deno.test("server_access helpers", async (t) => {
  await t.step("address literals as valid_mailhost_addr", () => {
    assertEquals(mailhostAddress("192.0.2.1"), "192.0.2.1");
    assertEquals(mailhostAddress("IPv6:2001:DB8::1"), "2001:db8::1");
    assertEquals(mailhostAddress("2001:db8::1"), null);
    assertEquals(mailhostAddress("[192.0.2.1]"), null);
    assertEquals(mailhostAddress("192.0.2.256"), null);
  });
  await t.step("/etc/hosts by name: every alias, file order, comments skipped", () => {
    const m = parseHostsByName(
      "127.0.0.1 localhost lh # x\n::1 localhost\nbad line\n#10.0.0.1 c\n",
    );
    assertEquals(m.get("localhost"), ["127.0.0.1", "::1"]);
    assertEquals(m.get("lh"), ["127.0.0.1"]);
    assertEquals(m.get("c"), undefined);
    assertEquals(m.get("__proto__"), undefined);
  });
  await t.step("the probe sees names and addresses in Postfix's order", async () => {
    const seen: string[] = [];
    const found = await findServerAccess(
      {
        dns: zone(),
        families: { ipv4: true, ipv6: false },
        hostAddresses: () => undefined,
        warn: () => {},
      },
      "MX",
      "u@two.example",
      { replyClass: "Sender address", replyName: "u@two.example" },
      {
        hostname: (n) => (seen.push(`name ${n}`), Promise.resolve(undefined)),
        address: (a) => (seen.push(`addr ${a}`), Promise.resolve(undefined)),
      },
    );
    assertEquals(found, undefined);
    assertEquals(seen, [
      "name a.two.example",
      "addr 192.0.2.20",
      "name b.two.example",
      "addr 192.0.2.21",
    ]);
  });
});
