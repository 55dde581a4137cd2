/**
 * Tests for checkHost (RFC 7208 sections 4 to 7) over lib/dns's fake
 * resolver: results and qualifiers, each mechanism, CIDR matching, include
 * and redirect, the processing limits, explanations, macros in queries,
 * and DNS failures.
 */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import type { Answer } from "../dns/testing.ts";
import { fakeResolver } from "../dns/testing.ts";
import { checkHost, type CheckHostOptions, type SpfResult } from "./check.ts";

type Zone = Parameters<typeof fakeResolver>[0];

/** TXT table from records: a string is one single-string record, an array several records. */
function txt(records: Record<string, string | string[] | Answer<string[][]>>) {
  const out: Record<string, Answer<string[][]>> = {};
  for (const [name, v] of Object.entries(records)) {
    if (Array.isArray(v)) out[name] = v.map((r) => (typeof r === "string" ? [r] : r));
    else if (v === "nxdomain" || v === "nodata" || v === "servfail" || v === "timeout") {
      out[name] = v;
    } else out[name] = [[v]];
  }
  return out;
}

const T0 = new Date("2026-12-01T00:00:00Z");

/** Runs checkHost for `sender` (its domain unless `domain` is given) and returns the queries too. */
async function check(
  zone: Zone,
  ip: string,
  sender: string,
  extra: Partial<CheckHostOptions> & { domain?: string } = {},
): Promise<SpfResult & { queries: string[] }> {
  const resolver = fakeResolver(zone);
  const domain = extra.domain ?? sender.slice(sender.lastIndexOf("@") + 1);
  const r = await checkHost(ip, domain, sender, {
    resolver,
    helo: "mail.example.net",
    receivingHost: "mx.example.org",
    now: () => T0,
    ...extra,
  });
  return { ...r, queries: resolver.queries };
}

/** Only the result. */
async function result(zone: Zone, ip: string, sender = "joe@example.com", extra = {}) {
  return (await check(zone, ip, sender, extra)).result;
}

Deno.test("results and qualifiers", async (t) => {
  for (
    const [q, want] of [["", "pass"], ["+", "pass"], ["-", "fail"], ["~", "softfail"], [
      "?",
      "neutral",
    ]]
  ) {
    await t.step(`${q || "(none)"}all is ${want}`, async () => {
      const r = await check(
        { txt: txt({ "example.com": `v=spf1 ${q}all` }) },
        "192.0.2.1",
        "joe@example.com",
      );
      assertEquals([r.result, r.mechanism, r.domain], [want, `${q}all`, "example.com"]);
    });
  }
  await t.step("no mechanism matches: neutral, no mechanism", async () => {
    const r = await check(
      { txt: txt({ "example.com": "v=spf1 ip4:198.51.100.1" }) },
      "192.0.2.1",
      "joe@example.com",
    );
    assertEquals([r.result, r.mechanism], ["neutral", undefined]);
  });
  await t.step("an empty record is neutral", async () => {
    assertEquals(await result({ txt: txt({ "example.com": "v=spf1" }) }, "192.0.2.1"), "neutral");
  });
  await t.step("the first matching mechanism decides", async () => {
    const r = await check(
      { txt: txt({ "example.com": "v=spf1 -ip4:192.0.2.1 +ip4:192.0.2.0/24 all" }) },
      "192.0.2.1",
      "joe@example.com",
    );
    assertEquals([r.result, r.mechanism], ["fail", "-ip4:192.0.2.1"]);
  });
  await t.step("the domain is checked lowercase without its trailing dot", async () => {
    const r = await check(
      { txt: txt({ "example.com": "v=spf1 -all" }) },
      "192.0.2.1",
      "joe@Example.COM.",
    );
    assertEquals([r.result, r.domain], ["fail", "example.com"]);
  });
});

Deno.test("none: no record, no domain, malformed domains", async (t) => {
  await t.step("NXDOMAIN, no TXT records, TXT without v=spf1", async () => {
    const zone = {
      txt: txt({ "nodata.example": "nodata", "other.example": ["x=1", "v=spf10 -all"] }),
    };
    assertEquals(await result(zone, "192.0.2.1", "a@nxdomain.example"), "none");
    assertEquals(await result(zone, "192.0.2.1", "a@nodata.example"), "none");
    assertEquals(await result(zone, "192.0.2.1", "a@other.example"), "none");
  });
  const malformed = [
    `a@${"a".repeat(64)}.example.com`,
    "a@a...example.com",
    "a@localhost",
    "a@[192.0.2.1]",
    "a@192.0.2.1",
    `a@${"abcdefghi.".repeat(26)}com`,
  ];
  for (const sender of malformed) {
    await t.step(`${sender.slice(0, 40)}: none without a query`, async () => {
      const r = await check({ txt: txt({}) }, "192.0.2.1", sender);
      assertEquals([r.result, r.queries], ["none", []]);
    });
  }
  await t.step("a 63-character label is fine", async () => {
    const d = `${"a".repeat(63)}.example.com`;
    assertEquals(await result({ txt: txt({ [d]: "v=spf1 -all" }) }, "192.0.2.1", `a@${d}`), "fail");
  });
  await t.step("HELO identity not fully qualified", async () => {
    const r = await check({ txt: txt({}) }, "192.0.2.1", "", {
      helo: "A2345678",
      domain: "A2345678",
    });
    assertEquals(r.result, "none");
  });
  await t.step("a non-ASCII domain is checked as A-labels", async () => {
    const r = await check(
      { txt: txt({ "xn--bcher-kva.example": "v=spf1 -all" }) },
      "192.0.2.1",
      "joe@b\u00fccher.example",
    );
    assertEquals([r.result, r.domain], ["fail", "xn--bcher-kva.example"]);
  });
});

Deno.test("permerror: record selection and syntax", async (t) => {
  await t.step("two SPF records", async () => {
    const r = await check(
      { txt: txt({ "example.com": ["v=spf1 -all", "v=spf1 +all", "unrelated"] }) },
      "192.0.2.1",
      "joe@example.com",
    );
    assertEquals(r.result, "permerror");
    assertEquals(r.problem, "example.com has 2 SPF records");
  });
  await t.step("a syntax error after a matching mechanism", async () => {
    const r = await check(
      { txt: txt({ "example.com": "v=spf1 +all moo" }) },
      "192.0.2.1",
      "joe@example.com",
    );
    assertEquals(r.result, "permerror");
    assertEquals(r.problem, 'bad SPF record of example.com: unknown mechanism "moo"');
  });
  await t.step("non-ASCII in the record; not in other TXT records", async () => {
    assertEquals(
      await result(
        { txt: txt({ "example.com": "v=spf1 a:\u00efx.example.net -all" }) },
        "192.0.2.1",
      ),
      "permerror",
    );
    assertEquals(
      await result({ txt: txt({ "example.com": ["v=spf1 -all", "\u0096"] }) }, "192.0.2.1"),
      "fail",
    );
  });
  await t.step("unknown modifiers are ignored", async () => {
    assertEquals(
      await result(
        { txt: txt({ "example.com": "v=spf1 default=pass foo=%{d} -all" }) },
        "192.0.2.1",
      ),
      "fail",
    );
  });
});

Deno.test("temperror on DNS failures", async (t) => {
  for (const failure of ["servfail", "timeout"] as const) {
    await t.step(`${failure} of the record`, async () => {
      const r = await check(
        { txt: txt({ "example.com": failure }) },
        "192.0.2.1",
        "joe@example.com",
      );
      assertEquals(r.result, "temperror");
      assert(r.problem?.includes("name=example.com type=TXT"), r.problem);
    });
    await t.step(`${failure} in a, mx, an MX host, exists, include`, async () => {
      const records = {
        "a.example": "v=spf1 a:h.example.com -all",
        "mx.example": "v=spf1 mx:h.example.com -all",
        "mxhost.example": "v=spf1 mx:m.example.com -all",
        "exists.example": "v=spf1 exists:h.example.com -all",
        "include.example": "v=spf1 include:h.example.com -all",
        "h.example.com": failure,
      };
      const zone = {
        txt: txt(records),
        a: { "h.example.com": failure },
        mx: {
          "h.example.com": failure,
          "m.example.com": [{ preference: 0, exchange: "h.example.com" }],
        },
      };
      for (const d of ["a", "mx", "mxhost", "exists", "include"]) {
        assertEquals(await result(zone, "192.0.2.1", `joe@${d}.example`), "temperror", d);
      }
    });
  }
  await t.step("an MX host that matches wins over one that fails", async () => {
    const zone = {
      txt: txt({ "example.com": "v=spf1 mx -all" }),
      mx: {
        "example.com": [
          { preference: 0, exchange: "bad.example.com" },
          { preference: 10, exchange: "good.example.com" },
        ],
      },
      a: { "bad.example.com": "servfail" as const, "good.example.com": ["192.0.2.1"] },
    };
    assertEquals(await result(zone, "192.0.2.1"), "pass");
    assertEquals(await result(zone, "192.0.2.2"), "temperror");
  });
});

Deno.test("ip4 and ip6: CIDR matching", async (t) => {
  const zone = {
    txt: txt({
      "v4.example": "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.7 -all",
      "v6.example": "v=spf1 ip6:2001:db8:1234::/48 ip6:2001:db8::cb01 -all",
      "zero.example": "v=spf1 ip4:1.1.1.1/0 ip6:::1.1.1.1/0 -all",
      "mapped.example": "v=spf1 -ip4:192.0.2.3 ip6:::ffff:192.0.2.3 +all",
      "v6mapped.example": "v=spf1 ip6:::ffff:192.0.2.0/120 -all",
      "v6half.example": "v=spf1 ip6:cafe:babe:8000::/33 -all",
    }),
  };
  const cases: [string, string, string][] = [
    ["v4.example", "192.0.2.255", "pass"],
    ["v4.example", "192.0.3.0", "fail"],
    ["v4.example", "198.51.100.7", "pass"],
    ["v4.example", "198.51.100.8", "fail"],
    ["v4.example", "::ffff:192.0.2.200", "pass"],
    ["v4.example", "2001:db8::1", "fail"],
    ["v6.example", "2001:db8:1234:ffff::1", "pass"],
    ["v6.example", "2001:db8:1235::1", "fail"],
    ["v6.example", "2001:DB8::CB01", "pass"],
    ["v6.example", "2001:db8::cb02", "fail"],
    ["v6.example", "192.0.2.1", "fail"],
    ["zero.example", "203.0.113.9", "pass"],
    ["zero.example", "::ffff:203.0.113.9", "pass"],
    ["zero.example", "fe80::1", "pass"],
    ["mapped.example", "::ffff:192.0.2.3", "fail"],
    ["mapped.example", "192.0.2.3", "fail"],
    ["v6mapped.example", "::ffff:192.0.2.3", "fail"],
    ["v6mapped.example", "192.0.2.3", "fail"],
    ["v6half.example", "cafe:babe:8000::", "pass"],
    ["v6half.example", "cafe:babe:7fff::", "fail"],
  ];
  for (const [domain, ip, want] of cases) {
    await t.step(`${domain} ${ip}: ${want}`, async () => {
      assertEquals(await result(zone, ip, `joe@${domain}`), want);
    });
  }
});

Deno.test("a", async (t) => {
  const zone = {
    txt: txt({
      "example.com": "v=spf1 a -all",
      "other.example": "v=spf1 a:mail.example.com/24 -all",
      "dual.example": "v=spf1 a:mail.example.com/24//64 -all",
      "v6only.example": "v=spf1 a:mail.example.com//64 -all",
      "zero.example": "v=spf1 a:none.example.com/0 -all",
      "colon.example": "v=spf1 a:foo:bar/baz.example.com -all",
    }),
    a: {
      "example.com": ["198.51.100.1", "192.0.2.10"],
      "mail.example.com": ["192.0.2.5"],
      "foo:bar/baz.example.com": ["192.0.2.9"],
    },
    aaaa: { "example.com": ["2001:db8::10"], "mail.example.com": ["2001:db8:1234::dead:beef"] },
  };
  const cases: [string, string, string][] = [
    ["example.com", "192.0.2.10", "pass"],
    ["example.com", "198.51.100.1", "pass"],
    ["example.com", "192.0.2.11", "fail"],
    ["example.com", "2001:db8::10", "pass"],
    ["example.com", "::ffff:192.0.2.10", "pass"],
    ["other.example", "192.0.2.200", "pass"],
    ["other.example", "2001:db8:1234::1", "fail"],
    ["dual.example", "192.0.2.77", "pass"],
    ["dual.example", "2001:db8:1234::cafe:babe", "pass"],
    ["dual.example", "2001:db8:1235::1", "fail"],
    ["v6only.example", "192.0.2.77", "fail"],
    ["v6only.example", "2001:db8:1234::1", "pass"],
    ["zero.example", "192.0.2.1", "fail"],
    ["colon.example", "192.0.2.9", "pass"],
  ];
  for (const [domain, ip, want] of cases) {
    await t.step(`${domain} ${ip}: ${want}`, async () => {
      assertEquals(await result(zone, ip, `joe@${domain}`), want);
    });
  }
  await t.step("the client's family decides the query type", async () => {
    const r4 = await check(zone, "192.0.2.10", "joe@example.com");
    const r6 = await check(zone, "2001:db8::10", "joe@example.com");
    assertEquals(r4.queries, ["TXT example.com", "A example.com"]);
    assertEquals(r6.queries, ["TXT example.com", "AAAA example.com"]);
  });
});

Deno.test("mx", async (t) => {
  const mx = (...hosts: string[]) => hosts.map((h, i) => ({ preference: i * 10, exchange: h }));
  const zone = {
    txt: txt({
      "example.com": "v=spf1 mx -all",
      "cidr.example": "v=spf1 mx:example.com/24//64 -all",
      "implicit.example": "v=spf1 mx -all",
      "null.example": "v=spf1 mx -all",
      "ten.example": "v=spf1 mx -all",
      "eleven.example": "v=spf1 mx -all",
    }),
    mx: {
      "example.com": mx("mx1.example.com.", "mx2.example.com."),
      "cidr.example": "nodata" as const,
      "null.example": [{ preference: 0, exchange: "." }],
      "ten.example": mx(...Array(9).fill("mx1.example.com"), "last.example.com"),
      "eleven.example": mx(...Array(10).fill("mx1.example.com"), "last.example.com"),
    },
    a: {
      "mx1.example.com": ["192.0.2.1"],
      "mx2.example.com": ["192.0.2.2"],
      "implicit.example": ["192.0.2.3"],
      "last.example.com": ["192.0.2.4"],
    },
    aaaa: { "mx2.example.com": ["2001:db8::2"] },
  };
  const cases: [string, string, string][] = [
    ["example.com", "192.0.2.1", "pass"],
    ["example.com", "192.0.2.2", "pass"],
    ["example.com", "192.0.2.3", "fail"],
    ["example.com", "2001:db8::2", "pass"],
    ["example.com", "::ffff:192.0.2.2", "pass"],
    ["cidr.example", "192.0.2.200", "pass"],
    ["cidr.example", "2001:db8::ffff", "pass"],
    ["implicit.example", "192.0.2.3", "fail"],
    ["null.example", "192.0.2.3", "fail"],
    ["ten.example", "192.0.2.4", "pass"],
    ["eleven.example", "192.0.2.1", "permerror"],
  ];
  for (const [domain, ip, want] of cases) {
    await t.step(`${domain} ${ip}: ${want}`, async () => {
      assertEquals(await result(zone, ip, `joe@${domain}`), want);
    });
  }
  await t.step("no implicit MX: the target's own address is not looked up", async () => {
    const r = await check(zone, "192.0.2.3", "joe@implicit.example");
    assertEquals(r.queries, ["TXT implicit.example", "MX implicit.example"]);
  });
  await t.step("more than 10 MX records: permerror saying so", async () => {
    const r = await check(zone, "192.0.2.4", "joe@eleven.example");
    assertEquals(r.problem, "mx of eleven.example: eleven.example has 11 MX records (limit 10)");
  });
  await t.step("each host is asked once", async () => {
    const r = await check(zone, "192.0.2.9", "joe@ten.example");
    assertEquals(r.queries, [
      "TXT ten.example",
      "MX ten.example",
      "A mx1.example.com",
      "A last.example.com",
    ]);
  });
});

Deno.test("ptr", async (t) => {
  const zone = {
    txt: txt({
      "example.com": "v=spf1 ptr -all",
      "target.example": "v=spf1 ptr:Example.COM -all",
      "other.example": "v=spf1 ptr -all",
    }),
    ptr: {
      "3.2.0.192.in-addr.arpa": [
        "unrelated.example.net.",
        "forged.example.com.",
        "MAIL.example.com.",
      ],
      "4.2.0.192.in-addr.arpa": "servfail" as const,
      "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa": [
        "v6.example.com",
      ],
      "5.2.0.192.in-addr.arpa": [...Array(10).fill("x.example.net"), "mail.example.com"],
      "6.2.0.192.in-addr.arpa": [...Array(9).fill("x.example.net"), "mail.example.com"],
    },
    a: {
      "mail.example.com": ["192.0.2.3", "192.0.2.5", "192.0.2.6"],
      "forged.example.com": ["198.51.100.1"],
      "unrelated.example.net": ["192.0.2.3"],
    },
    aaaa: { "v6.example.com": ["2001:db8::cb01"] },
  };
  const cases: [string, string, string][] = [
    ["example.com", "192.0.2.3", "pass"],
    ["target.example", "192.0.2.3", "pass"],
    ["other.example", "192.0.2.3", "fail"],
    ["example.com", "2001:db8::cb01", "pass"],
    ["example.com", "::ffff:192.0.2.3", "pass"],
    ["example.com", "192.0.2.4", "fail"],
    ["example.com", "192.0.2.5", "fail"],
    ["example.com", "192.0.2.6", "pass"],
    ["example.com", "192.0.2.7", "fail"],
  ];
  for (const [domain, ip, want] of cases) {
    await t.step(`${domain} ${ip}: ${want}`, async () => {
      assertEquals(await result(zone, ip, `joe@${domain}`), want);
    });
  }
  await t.step("only names within the target are validated", async () => {
    const r = await check(zone, "192.0.2.3", "joe@example.com");
    assertEquals(r.queries, [
      "TXT example.com",
      "PTR 3.2.0.192.in-addr.arpa",
      "A forged.example.com",
      "A mail.example.com",
    ]);
  });
});

Deno.test("exists", async (t) => {
  const zone = {
    txt: txt({
      "example.com": "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
      "v6.example": "v=spf1 exists:mail.example.com -all",
    }),
    a: { "3.2.0.192.foo._spf.example.com": ["127.0.0.2"], "mail.example.com": ["127.0.0.2"] },
  };
  await t.step("matches when the expanded name has an A record", async () => {
    const r = await check(zone, "192.0.2.3", "foo-bar@example.com");
    assertEquals([r.result, r.mechanism], ["pass", "exists:%{ir}.%{l1r+-}._spf.%{d}"]);
    assertEquals(r.queries, ["TXT example.com", "A 3.2.0.192.foo._spf.example.com"]);
  });
  await t.step("does not match without one", async () => {
    assertEquals(await result(zone, "192.0.2.4", "foo-bar@example.com"), "fail");
  });
  await t.step("asks for A even for an IPv6 client", async () => {
    const r = await check(zone, "2001:db8::1", "joe@v6.example");
    assertEquals([r.result, r.queries], ["pass", ["TXT v6.example", "A mail.example.com"]]);
  });
  await t.step("a name made malformed by a macro matches nothing", async () => {
    const z = { txt: txt({ "example.com": "v=spf1 exists:%{l}.example.com -all" }) };
    const r = await check(z, "192.0.2.3", "a..b@example.com");
    assertEquals([r.result, r.queries], ["fail", ["TXT example.com"]]);
  });
});

Deno.test("include", async (t) => {
  const zone = {
    txt: txt({
      "pass.example": "v=spf1 include:inner-pass.example -all",
      "inner-pass.example": "v=spf1 ip4:192.0.2.1 -all",
      "fail.example": "v=spf1 include:inner-fail.example ~all",
      "inner-fail.example": "v=spf1 -all",
      "softfail.example": "v=spf1 include:inner-softfail.example -all",
      "inner-softfail.example": "v=spf1 ~all",
      "neutral.example": "v=spf1 include:inner-neutral.example -all",
      "inner-neutral.example": "v=spf1 ?all",
      "temp.example": "v=spf1 include:inner-temp.example +all",
      "inner-temp.example": "timeout",
      "perm.example": "v=spf1 include:inner-perm.example +all",
      "inner-perm.example": "v=spf1 include +all",
      "none.example": "v=spf1 include:inner-none.example +all",
      "inner-none.example": "v=spf1spf",
      "self.example": "v=spf1 include:self.example -all",
      "loop1.example": "v=spf1 include:loop2.example -all",
      "loop2.example": "v=spf1 include:loop1.example -all",
      "d.example": "v=spf1 include:inner-d.example -all",
      "inner-d.example": "v=spf1 exists:%{d}.ok.example -all",
    }),
    a: { "inner-d.example.ok.example": ["127.0.0.2"] },
  };
  const cases: [string, string, string, string | undefined][] = [
    ["pass.example", "192.0.2.1", "pass", "include:inner-pass.example"],
    ["pass.example", "192.0.2.2", "fail", "-all"],
    ["fail.example", "192.0.2.1", "softfail", "~all"],
    ["softfail.example", "192.0.2.1", "fail", "-all"],
    ["neutral.example", "192.0.2.1", "fail", "-all"],
    ["temp.example", "192.0.2.1", "temperror", undefined],
    ["perm.example", "192.0.2.1", "permerror", undefined],
    ["none.example", "192.0.2.1", "permerror", undefined],
    ["nxdomain-target.example", "192.0.2.1", "none", undefined],
    ["self.example", "192.0.2.1", "permerror", undefined],
    ["loop1.example", "192.0.2.1", "permerror", undefined],
    ["d.example", "192.0.2.1", "pass", "include:inner-d.example"],
  ];
  for (const [domain, ip, want, mechanism] of cases) {
    await t.step(`${domain}: ${want}`, async () => {
      const r = await check(zone, ip, `joe@${domain}`);
      assertEquals([r.result, r.mechanism], [want, mechanism]);
    });
  }
  await t.step("an include of itself stops at the lookup limit", async () => {
    const r = await check(zone, "192.0.2.1", "joe@self.example");
    assertEquals(
      r.problem,
      "more than 10 DNS-querying terms (include, a, mx, ptr, exists, redirect)",
    );
    assertEquals(r.queries, ["TXT self.example"]);
  });
  await t.step("a target without a record", async () => {
    const r = await check(zone, "192.0.2.1", "joe@none.example");
    assertEquals(
      r.problem,
      "include:inner-none.example of none.example: inner-none.example has no SPF record",
    );
  });
});

Deno.test("redirect", async (t) => {
  const zone = {
    txt: txt({
      "example.com": "v=spf1 ip4:198.51.100.1 redirect=_spf.example.com",
      "_spf.example.com": "v=spf1 a -all",
      "all.example": "v=spf1 redirect=_spf.example.com ~all",
      "missing.example": "v=spf1 redirect=nowhere.example",
      "malformed.example": "v=spf1 redirect=%{l}.example",
      "loop.example": "v=spf1 ip4:198.51.100.1 redirect=loop.example",
      "dot.example": "v=spf1 redirect=%{d}.d.spf.example.com.",
      "dot.example.d.spf.example.com": "v=spf1 include:o.spf.example.com. ~all",
      "o.spf.example.com": "v=spf1 ip4:192.0.2.3",
    }),
    a: { "_spf.example.com": ["192.0.2.1"], "example.com": ["192.0.2.2"] },
  };
  await t.step("followed when nothing matched; the target is <domain> there", async () => {
    const r = await check(zone, "192.0.2.1", "joe@example.com");
    assertEquals([r.result, r.mechanism, r.domain], ["pass", "a", "example.com"]);
    assertEquals(await result(zone, "192.0.2.2"), "fail");
    assertEquals(await result(zone, "198.51.100.1"), "pass");
  });
  await t.step("ignored when the record has all", async () => {
    const r = await check(zone, "192.0.2.1", "joe@all.example");
    assertEquals([r.result, r.queries], ["softfail", ["TXT all.example"]]);
  });
  await t.step("a target without a record, or a malformed one: permerror", async () => {
    const r = await check(zone, "192.0.2.1", "joe@missing.example");
    assertEquals(r.result, "permerror");
    assertEquals(
      r.problem,
      "redirect=nowhere.example of missing.example: nowhere.example has no SPF record",
    );
    assertEquals(await result(zone, "192.0.2.1", "a..b@malformed.example"), "permerror");
  });
  await t.step("a loop stops at the lookup limit", async () => {
    assertEquals(await result(zone, "192.0.2.1", "joe@loop.example"), "permerror");
  });
  await t.step("trailing dots in domain-specs are ignored", async () => {
    assertEquals(await result(zone, "192.0.2.3", "joe@dot.example"), "pass");
  });
});

Deno.test("processing limits", async (t) => {
  const terms = (n: number, term: string) => Array(n).fill(term).join(" ");
  const zone = {
    txt: txt({
      "ten.example": `v=spf1 ${terms(5, "a mx")} ip4:192.0.2.1 -all`,
      "eleven.example": `v=spf1 ${terms(5, "a mx")} a ip4:192.0.2.1 -all`,
      "early.example": `v=spf1 ip4:192.0.2.1 ${terms(11, "a")} -all`,
      "inc-at.example": "v=spf1 a include:inc.example ip4:192.0.2.1 mx -all",
      "inc-over.example": "v=spf1 a include:inc.example a ip4:192.0.2.1 -all",
      "inc.example": `v=spf1 ${terms(8, "a")}`,
      "void2.example": "v=spf1 a:v1.example.com a:v2.example.com ip4:192.0.2.1 -all",
      "void3.example": "v=spf1 a:v1.example.com a:v2.example.com a:v3.example.com +all",
      "voidmix.example": "v=spf1 mx:v1.example.com exists:v2.example.com ptr +all",
      "voidexp.example": "v=spf1 a:v1.example.com a:v2.example.com exp=v3.example.com -all",
      "many-a.example": "v=spf1 a -all",
    }),
    a: {
      "ten.example": ["198.51.100.1"],
      "eleven.example": ["198.51.100.1"],
      "inc-at.example": ["198.51.100.1"],
      "inc-over.example": ["198.51.100.1"],
      "inc.example": ["198.51.100.1"],
      "many-a.example": Array.from({ length: 20 }, (_, i) => `192.0.2.${i + 1}`),
    },
    mx: {
      "ten.example": [{ preference: 0, exchange: "ten.example" }],
      "eleven.example": [{ preference: 0, exchange: "eleven.example" }],
    },
  };
  await t.step("10 DNS-querying terms are allowed", async () => {
    assertEquals(await result(zone, "192.0.2.1", "joe@ten.example"), "pass");
  });
  await t.step("the 11th is a permerror", async () => {
    assertEquals(await result(zone, "192.0.2.1", "joe@eleven.example"), "permerror");
  });
  await t.step("terms are counted as evaluated, not as written", async () => {
    assertEquals(await result(zone, "192.0.2.1", "joe@early.example"), "pass");
    assertEquals(await result(zone, "192.0.2.1", "joe@inc-at.example"), "pass");
    assertEquals(await result(zone, "192.0.2.1", "joe@inc-over.example"), "permerror");
  });
  await t.step("2 void lookups are allowed, the 3rd is a permerror", async () => {
    assertEquals(await result(zone, "192.0.2.1", "joe@void2.example"), "pass");
    const r = await check(zone, "192.0.2.1", "joe@void3.example");
    assertEquals(r.result, "permerror");
    assertEquals(r.problem, 'more than 2 void DNS lookups (the last by "a:v3.example.com")');
  });
  await t.step("mx, exists and ptr lookups count as void too", async () => {
    assertEquals(await result(zone, "192.0.2.1", "joe@voidmix.example"), "permerror");
  });
  await t.step("the exp= lookup is not counted", async () => {
    assertEquals(await result(zone, "192.0.2.1", "joe@voidexp.example"), "fail");
  });
  await t.step("no limit on the number of A records", async () => {
    assertEquals(await result(zone, "192.0.2.20", "joe@many-a.example"), "pass");
  });
  await t.step("limits can be changed", async () => {
    assertEquals(
      await result(zone, "192.0.2.1", "joe@ten.example", { limits: { lookups: 9 } }),
      "permerror",
    );
    assertEquals(
      await result(zone, "192.0.2.1", "joe@void3.example", { limits: { voidLookups: 3 } }),
      "pass",
    );
  });
  await t.step("the elapsed time, by the injected clock: temperror", async () => {
    let now = T0.getTime();
    const clock = () => new Date(now += 6000);
    const r = await check(zone, "192.0.2.1", "joe@ten.example", { now: clock });
    assertEquals(r.result, "temperror");
    assertEquals(r.problem, "SPF evaluation took longer than 20000 ms");
  });
});

Deno.test("exp: explanations of fail", async (t) => {
  const zone = {
    txt: txt({
      "example.com": "v=spf1 ip4:192.0.2.0/24 ~ip4:198.51.100.0/24 -all exp=explain._spf.%{d}",
      "explain._spf.example.com": [[
        "%{i} is not one of %{d}'s designated mail servers; ",
        "see http://%{d}/why.html?s=%{S}&i=%{C}&r=%{r}&t=%{t}.",
      ]],
      "none.example": "v=spf1 -all exp=nowhere.example",
      "multi.example": "v=spf1 -all exp=multi-exp.example",
      "multi-exp.example": ["one", "two"],
      "bad.example": "v=spf1 -all exp=bad-exp.example",
      "bad-exp.example": "The %{x}-files.",
      "ascii.example": "v=spf1 -all exp=ascii-exp.example",
      "ascii-exp.example": "\u00efExplanation",
      "temp.example": "v=spf1 -all exp=temp-exp.example",
      "temp-exp.example": "servfail",
      "include.example": "v=spf1 include:include-inner.example -all exp=include-exp.example",
      "include-inner.example": "v=spf1 -all exp=wrong-exp.example",
      "include-exp.example": "Correct!",
      "wrong-exp.example": "Wrong",
      "redirect.example": "v=spf1 exp=wrong-exp.example redirect=redirect-target.example",
      "redirect-target.example": "v=spf1 -all exp=include-exp.example",
      "null.example": "v=spf1 -all exp=%{l}._exp.example",
      "postmaster._exp.example": "%{s} via %{h}, at %{o}",
      "dot.example": "v=spf1 -all exp=msg.example.",
      "msg.example": "This is a test.",
      "p.example": "v=spf1 -all exp=p-exp.example",
      "p-exp.example": "connect from %{p}",
    }),
    ptr: {
      "3.2.0.192.in-addr.arpa": ["mx.example.org"],
      "5.2.0.192.in-addr.arpa": ["mx.example.org"],
    },
    a: { "mx.example.org": ["192.0.2.5"] },
  };
  await t.step("a fail gets the expanded explanation", async () => {
    const r = await check(zone, "203.0.113.9", "strong-bad@example.com");
    assertEquals(r.result, "fail");
    assertEquals(
      r.explanation,
      "203.0.113.9 is not one of example.com's designated mail servers; see " +
        "http://example.com/why.html?s=strong-bad%40example.com&i=203.0.113.9&r=mx.example.org" +
        `&t=${T0.getTime() / 1000}.`,
    );
  });
  await t.step("other results get none", async () => {
    assertEquals((await check(zone, "198.51.100.1", "joe@example.com")).explanation, undefined);
    assertEquals((await check(zone, "192.0.2.1", "joe@example.com")).explanation, undefined);
  });
  await t.step("no record, two records, bad syntax, non-ASCII, DNS error: none", async () => {
    for (const d of ["none", "multi", "bad", "ascii", "temp"]) {
      const r = await check(zone, "192.0.2.1", `joe@${d}.example`);
      assertEquals([r.result, r.explanation], ["fail", undefined], d);
    }
  });
  await t.step("an included record's exp= is not used, the includer's is", async () => {
    const r = await check(zone, "192.0.2.1", "joe@include.example");
    assertEquals([r.result, r.explanation], ["fail", "Correct!"]);
  });
  await t.step("after redirect=, the target's exp= is used", async () => {
    const r = await check(zone, "192.0.2.1", "joe@redirect.example");
    assertEquals([r.result, r.explanation], ["fail", "Correct!"]);
  });
  await t.step("the null sender is postmaster@<helo>", async () => {
    const r = await check(zone, "192.0.2.1", "", { domain: "null.example", helo: "helo.example" });
    assertEquals(r.explanation, "postmaster@helo.example via helo.example, at helo.example");
  });
  await t.step("a missing local part is postmaster", async () => {
    const r = await check(zone, "192.0.2.1", "@null.example");
    assertEquals(r.explanation, "postmaster@null.example via mail.example.net, at null.example");
  });
  await t.step("a sender without @ is postmaster@ it", async () => {
    const r = await check(zone, "192.0.2.1", "null.example");
    assertEquals(r.explanation, "postmaster@null.example via mail.example.net, at null.example");
  });
  await t.step("an explanation made non-ASCII by a macro is dropped", async () => {
    const z = {
      txt: txt({ "example.com": "v=spf1 -all exp=e.example.com", "e.example.com": "%{l}" }),
    };
    assertEquals((await check(z, "192.0.2.1", "j\u00f6rg@example.com")).explanation, undefined);
    assertEquals((await check(z, "192.0.2.1", "jorg@example.com")).explanation, "jorg");
  });
  await t.step("a trailing dot in the text is kept", async () => {
    assertEquals(
      (await check(zone, "192.0.2.1", "joe@dot.example")).explanation,
      "This is a test.",
    );
  });
  await t.step("%{p}: a validated name, or unknown", async () => {
    assertEquals(
      (await check(zone, "192.0.2.5", "joe@p.example")).explanation,
      "connect from mx.example.org",
    );
    assertEquals(
      (await check(zone, "192.0.2.3", "joe@p.example")).explanation,
      "connect from unknown",
    );
    assertEquals(
      (await check(zone, "192.0.2.4", "joe@p.example")).explanation,
      "connect from unknown",
    );
  });
  await t.step("a long expanded name loses left labels to fit 253 characters", async () => {
    const o = "somewhat.long.exp.example.com";
    const z = {
      txt: txt({
        [o]: `v=spf1 -all exp=foobar.${Array(8).fill("%{o}").join(".")}.example.com`,
        [`${Array(8).fill(o).join(".")}.example.com`]: "Congratulations!  That was tricky.",
      }),
    };
    const r = await check(z, "192.0.2.1", `test@${o}`);
    assertEquals(r.explanation, "Congratulations!  That was tricky.");
  });
});

Deno.test("macros in queries", async (t) => {
  await t.step("%{p} prefers <domain>, then its subdomains", async () => {
    const zone = {
      txt: txt({
        "e7.example.com": "v=spf1 exists:%{p}.should.example.com ~exists:%{p}.ok.example.com",
      }),
      ptr: { "42.218.168.192.in-addr.arpa": ["mx.example.com", "mx.e7.example.com"] },
      a: {
        "mx.example.com": ["192.168.218.42"],
        "mx.e7.example.com": ["192.168.218.42"],
        "mx.e7.example.com.should.example.com": ["127.0.0.2"],
        "mx.example.com.ok.example.com": ["127.0.0.2"],
      },
    };
    assertEquals(await result(zone, "192.168.218.42", "test@e7.example.com"), "pass");
  });
  await t.step("%{h} and %{v}; uppercase macros are URL-encoded in names", async () => {
    const zone = {
      txt: txt({ "example.com": "v=spf1 exists:%{H}.%{v}.%{L}.x.example.com -all" }),
      a: { "mail.example.net.in-addr.a%2bb.x.example.com": ["127.0.0.2"] },
    };
    assertEquals(await result(zone, "192.0.2.1", "a+b@example.com"), "pass");
  });
  await t.step("%%, %_ and %- in a name", async () => {
    const zone = {
      txt: txt({ "example.com": "v=spf1 a:macro%%percent%_%_space%-url-space.example.com -all" }),
      a: { "macro%percent  space%20url-space.example.com": ["192.0.2.1"] },
    };
    assertEquals(await result(zone, "192.0.2.1"), "pass");
  });
});

Deno.test("each question is asked once per check", async () => {
  const zone = {
    txt: txt({
      "example.com": "v=spf1 a a:example.com include:_i.example.com -all",
      "_i.example.com": "v=spf1 a:example.com",
    }),
    a: { "example.com": ["198.51.100.1"] },
  };
  const r = await check(zone, "192.0.2.1", "joe@example.com");
  assertEquals(r.result, "fail");
  assertEquals(r.queries, ["TXT example.com", "A example.com", "TXT _i.example.com"]);
});

Deno.test("an invalid client address is the caller's error", async () => {
  await assertRejects(
    () => checkHost("not-an-ip", "example.com", "joe@example.com", { resolver: fakeResolver({}) }),
    TypeError,
  );
});
