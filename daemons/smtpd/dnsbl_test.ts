import { assertEquals } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import {
  addressQuery,
  type DnsxlContext,
  expandRblTemplate,
  expansionFilter,
  findDnsxlAddr,
  findDnsxlDomain,
} from "./dnsbl.ts";

function ctx(zone: Parameters<typeof fakeResolver>[0], now = () => 0) {
  const warnings: string[] = [];
  const resolver = fakeResolver(zone);
  const c: DnsxlContext = { resolver, cache: new Map(), warn: (m) => warnings.push(m), now };
  return { c, warnings, resolver };
}

Deno.test("dnsbl: query names", async (t) => {
  await t.step("IPv4 octets and IPv6 nibbles reversed, IPv4-mapped as IPv4", () => {
    assertEquals(addressQuery("192.0.2.1", "bl.example"), "1.2.0.192.bl.example");
    assertEquals(
      addressQuery("2001:db8::1", "bl.example"),
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example",
    );
    assertEquals(addressQuery("::ffff:192.0.2.1", "bl.example"), "1.2.0.192.bl.example");
    assertEquals(addressQuery("not-an-address", "bl.example"), null);
  });
  await t.step(
    "domains: after the last @; literals, numeric last labels, bad names skipped",
    async () => {
      const { c, resolver } = ctx({ a: { "spam.example.dbl.example": ["127.0.1.2"] } });
      assertEquals(typeof await findDnsxlDomain(c, "dbl.example", "x@spam.example"), "object");
      assertEquals(await findDnsxlDomain(c, "dbl.example", "x@[192.0.2.1]"), null);
      assertEquals(await findDnsxlDomain(c, "dbl.example", "host.123"), null);
      assertEquals(await findDnsxlDomain(c, "dbl.example", "bad..name"), null);
      assertEquals(await findDnsxlDomain(c, "dbl.example", "x@"), null);
      assertEquals(await findDnsxlDomain(c, "dbl.example", "good.example"), "unlisted");
      assertEquals(resolver.queries, [
        "A spam.example.dbl.example",
        "TXT spam.example.dbl.example",
        "A good.example.dbl.example",
      ]);
    },
  );
});

Deno.test("dnsbl: answers", async (t) => {
  const q = "1.2.0.192.bl.example";
  await t.step("listed: A records and TXT joined with ' / ', at most 500 characters", async () => {
    const { c } = ctx({
      a: { [q]: ["127.0.0.2"] },
      txt: { [q]: [["first ", "part"], ["second"], ["x".repeat(600)]] },
    });
    const r = await findDnsxlAddr(c, "bl.example", "192.0.2.1");
    if (typeof r !== "object") throw new Error(`not listed: ${r}`);
    assertEquals(r.a, ["127.0.0.2"]);
    assertEquals(r.txt!.startsWith("first part / second / xxx"), true);
    assertEquals(r.txt!.length, 500);
  });
  await t.step("a reply filter keeps matching answers only", async () => {
    const { c } = ctx({ a: { [q]: ["127.0.0.9", "127.0.0.4"] } });
    assertEquals(typeof await findDnsxlAddr(c, "bl.example=127.0.0.[2..5]", "192.0.2.1"), "object");
    assertEquals(await findDnsxlAddr(c, "bl.example=127.0.0.[5;7..8]", "192.0.2.1"), "unlisted");
    assertEquals(typeof await findDnsxlAddr(c, "bl.example=127.0.0.9", "192.0.2.1"), "object");
  });
  await t.step("NXDOMAIN is unlisted; SERVFAIL and time-outs are soft and logged", async () => {
    const { c, warnings } = ctx({ a: { [q]: "servfail", "1.2.0.192.slow.example": "timeout" } });
    assertEquals(await findDnsxlAddr(c, "other.example", "192.0.2.1"), "unlisted");
    assertEquals(await findDnsxlAddr(c, "bl.example", "192.0.2.1"), "soft");
    assertEquals(await findDnsxlAddr(c, "slow.example", "192.0.2.1"), "soft");
    assertEquals(warnings, [
      "1.2.0.192.bl.example: RBL lookup error: Host or domain name not found. Name service error for name=1.2.0.192.bl.example type=A: Host not found, try again",
      "1.2.0.192.slow.example: RBL lookup error: Host or domain name not found. Name service error for name=1.2.0.192.slow.example type=A: Host not found, try again",
    ]);
  });
  await t.step("answers are cached for a minute; soft failures are not", async () => {
    let now = 0;
    const { c, resolver } = ctx(
      { a: { [q]: ["127.0.0.2"], "1.2.0.192.sf.example": "servfail" } },
      () => now,
    );
    await findDnsxlAddr(c, "bl.example", "192.0.2.1");
    await findDnsxlAddr(c, "bl.example=127.0.0.2", "192.0.2.1");
    await findDnsxlAddr(c, "sf.example", "192.0.2.1");
    await findDnsxlAddr(c, "sf.example", "192.0.2.1");
    now = 61_000;
    await findDnsxlAddr(c, "bl.example", "192.0.2.1");
    assertEquals(resolver.queries.filter((x) => x.startsWith("A ")), [
      `A ${q}`,
      "A 1.2.0.192.sf.example",
      "A 1.2.0.192.sf.example",
      `A ${q}`,
    ]);
  });
});

Deno.test("dnsbl: reply templates", async (t) => {
  const attrs = {
    serverName: "mx.example",
    clientName: "host.example",
    clientAddr: "192.0.2.1",
    clientPort: "4711",
    reverseClientName: "ptr.example",
    helo: "helo.example",
    sender: "user@sender.example",
    recipient: "",
  };
  const facts = {
    list: "bl.example=127.0.0.2",
    what: "192.0.2.1",
    replyClass: "Client host",
    txt: "see http://bl.example/",
    code: 554,
  };
  const warn = () => {};
  await t.step("Postfix's default reply", () => {
    assertEquals(
      expandRblTemplate(
        "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}",
        facts,
        attrs,
        warn,
      ),
      "554 Service unavailable; Client host [192.0.2.1] blocked using bl.example; see http://bl.example/",
    );
  });
  await t.step("session attributes", () => {
    assertEquals(
      expandRblTemplate(
        "$client $client_port $reverse_client_name $helo_name $sender_name $sender_domain " +
          "[$recipient] $server_name $rbl_txt",
        facts,
        attrs,
        warn,
      ),
      "host.example[192.0.2.1] 4711 ptr.example helo.example user sender.example [<>] " +
        "mx.example see http://bl.example/",
    );
  });
  await t.step("TXT text cannot expand names nor break the reply", () => {
    const hostile = { ...facts, txt: "$sender ${client}\r\n250 ok \u00e9" };
    assertEquals(
      expandRblTemplate("$rbl_reason", hostile, attrs, warn),
      "$sender ${client}__250 ok __",
    );
    assertEquals(expansionFilter("a\tb\u0000"), "a\tb_");
  });
  await t.step("an unknown name makes the template bad", () => {
    const warnings: string[] = [];
    assertEquals(
      expandRblTemplate("$rbl_code $nope", facts, attrs, (m) => warnings.push(m)),
      null,
    );
    assertEquals(warnings, ['unknown macro name "nope" in expansion request']);
  });
});

Deno.test("dnsbl: a query the sandbox refuses is an error, not cached, never 'unlisted'", async () => {
  const { DnsNotPermitted } = await import("./unknown.ts");
  const { c } = ctx({});
  c.resolver.resolveA = () => Promise.reject(new Deno.errors.NotCapable("net access"));
  let thrown: unknown;
  try {
    await findDnsxlAddr(c, "bl.example", "192.0.2.1");
  } catch (e) {
    thrown = e;
  }
  assertEquals(thrown instanceof DnsNotPermitted, true);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(c.cache.size, 0);
});
