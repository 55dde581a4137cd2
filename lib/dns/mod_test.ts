/** Unit tests for lib/dns with a fake resolver: MX order, null MX, address fallback, error kinds. */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import {
  classifyDnsError,
  DnsError,
  familiesFrom,
  ipLiteral,
  lookupHost,
  lookupMx,
  sortMx,
} from "./mod.ts";
import { fakeResolver } from "./testing.ts";

const both = { ipv4: true, ipv6: true };

Deno.test("lib/dns", async (t) => {
  await t.step("MX hosts come in preference order, trailing dots and case removed", async () => {
    const r = fakeResolver({
      mx: {
        "example.test": [
          { preference: 20, exchange: "MX2.example.test." },
          { preference: 5, exchange: "mx0.example.test." },
          { preference: 10, exchange: "mx1.example.test." },
        ],
      },
    });
    const res = await lookupMx(r, "example.test");
    assert(res.kind === "mx");
    assertEquals(res.hosts.map((h) => h.exchange), [
      "mx0.example.test",
      "mx1.example.test",
      "mx2.example.test",
    ]);
  });

  await t.step("equal preferences are shuffled, never reordered across preferences", () => {
    const hosts = [
      { preference: 10, exchange: "a" },
      { preference: 10, exchange: "b" },
      { preference: 10, exchange: "c" },
      { preference: 20, exchange: "z" },
    ];
    const firsts = new Set<string>();
    let seed = 1;
    const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    for (let i = 0; i < 50; i++) {
      const out = sortMx(hosts, random);
      assertEquals(out[3].exchange, "z");
      firsts.add(out[0].exchange);
    }
    assertEquals(firsts.size, 3);
  });

  await t.step("duplicate MX hosts are tried once", () => {
    const out = sortMx([
      { preference: 10, exchange: "a" },
      { preference: 20, exchange: "a" },
    ]);
    assertEquals(out, [{ preference: 10, exchange: "a" }]);
  });

  await t.step("null MX", async () => {
    const r = fakeResolver({ mx: { "nomail.test": [{ preference: 0, exchange: "." }] } });
    assertEquals(await lookupMx(r, "nomail.test"), { kind: "nullmx" });
    const r2 = fakeResolver({ mx: { "nomail.test": [{ preference: 0, exchange: "" }] } });
    assertEquals(await lookupMx(r2, "nomail.test"), { kind: "nullmx" });
  });

  await t.step("no MX (NotFound or empty answer) means: use the domain's addresses", async () => {
    const r = fakeResolver({ mx: { "empty.test": [] }, a: { "plain.test": ["192.0.2.1"] } });
    assertEquals(await lookupMx(r, "plain.test"), { kind: "none" });
    assertEquals(await lookupMx(r, "empty.test"), { kind: "none" });
    assertEquals(await lookupHost(r, "plain.test", both), ["192.0.2.1"]);
  });

  await t.step("SERVFAIL on MX is a temporary DnsError", async () => {
    const r = fakeResolver({ mx: { "broken.test": "servfail" } });
    const e = (await assertRejects(() => lookupMx(r, "broken.test"), DnsError)) as DnsError;
    assertEquals(e.kind, "temporary");
    assertEquals(
      e.message,
      "Name service error for name=broken.test type=MX: Host not found, try again",
    );
  });

  await t.step("NXDOMAIN on the address lookup is a permanent DnsError", async () => {
    const r = fakeResolver({});
    const e = (await assertRejects(() => lookupHost(r, "gone.test", both), DnsError)) as DnsError;
    assertEquals(e.kind, "notfound");
    assert(e.permanent);
    assertEquals(e.message, "Name service error for name=gone.test type=A: Host not found");
  });

  await t.step("addresses: IPv4 before IPv6, IPv6 only when enabled", async () => {
    const r = fakeResolver({ a: { "h.test": ["192.0.2.1"] }, aaaa: { "h.test": ["2001:db8::1"] } });
    assertEquals(await lookupHost(r, "h.test", both), ["192.0.2.1", "2001:db8::1"]);
    r.queries.length = 0;
    assertEquals(await lookupHost(r, "h.test", familiesFrom(["ipv4"])), ["192.0.2.1"]);
    assertEquals(r.queries, ["A h.test"]);
  });

  await t.step("one family failing temporarily does not hide the other's addresses", async () => {
    const r = fakeResolver({ a: { "h.test": ["192.0.2.1"] }, aaaa: { "h.test": "servfail" } });
    assertEquals(await lookupHost(r, "h.test", both), ["192.0.2.1"]);
    const r2 = fakeResolver({ a: { "h.test": "servfail" } });
    const e = (await assertRejects(() => lookupHost(r2, "h.test", both), DnsError)) as DnsError;
    assertEquals(e.kind, "temporary");
  });

  await t.step("IP literals are not looked up", async () => {
    const r = fakeResolver({});
    assertEquals(await lookupHost(r, "[192.0.2.7]", both), ["192.0.2.7"]);
    assertEquals(await lookupHost(r, "[IPv6:2001:DB8::1]", both), ["2001:db8::1"]);
    assertEquals(r.queries, []);
    assertEquals(ipLiteral("mail.example"), null);
    assertEquals(ipLiteral("1.2.3.4"), "1.2.3.4");
  });

  await t.step("inet_protocols", () => {
    assertEquals(familiesFrom(["all"]), { ipv4: true, ipv6: true });
    assertEquals(familiesFrom(["ipv4"]), { ipv4: true, ipv6: false });
    assertEquals(familiesFrom(["ipv6"]), { ipv4: false, ipv6: true });
    assertEquals(familiesFrom(["ipv4", "ipv6"]), { ipv4: true, ipv6: true });
  });

  await t.step("sandbox refusals are temporary and say so", () => {
    const e = classifyDnsError(new Deno.errors.NotCapable("Requires net access"), "x.test", "MX");
    assertEquals(e.kind, "temporary");
    assert(e.message.includes("sandbox"));
  });

  await t.step("a name Deno will not ask about is not found, not a failure to retry", async () => {
    // Deno refuses these before any query (the name server given is never reached).
    const nameServer = { ipAddr: "127.0.0.1", port: 1 };
    for (const name of ["a+b._spf.example.com", "-bad.example.com"]) {
      const err = await Deno.resolveDns(name, "TXT", { nameServer }).then(() => null, (e) => e);
      const e = classifyDnsError(err, name, "TXT");
      assertEquals([e.kind, e.status], ["notfound", "nxdomain"], String(err));
    }
  });
});
