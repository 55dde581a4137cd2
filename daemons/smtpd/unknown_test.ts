import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { DnsNotPermitted, hostStatus, mailhostStatus } from "./unknown.ts";

Deno.test("unknown: host names (reject_unknown_helo_hostname)", async (t) => {
  await t.step("A, AAAA, then MX; the first answer ends the search", async () => {
    const r = fakeResolver({
      a: { "a.example": ["192.0.2.1"] },
      mx: { "m.example": [{ preference: 1, exchange: "a.example" }] },
    });
    assertEquals(await hostStatus(r, "a.example"), "ok");
    assertEquals(await hostStatus(r, "m.example"), "ok");
    assertEquals(r.queries, ["A a.example", "A m.example", "AAAA m.example", "MX m.example"]);
  });
  await t.step("a null MX is fine for a host; nothing at all is notfound", async () => {
    const r = fakeResolver({ mx: { "n.example": [{ preference: 0, exchange: "" }] } });
    assertEquals(await hostStatus(r, "n.example"), "ok");
    assertEquals(await hostStatus(r, "x.example"), "notfound");
  });
  await t.step("a temporary failure without any answer is retry", async () => {
    const r = fakeResolver({ a: { "t.example": "servfail" }, aaaa: { "t.example": "timeout" } });
    assertEquals(await hostStatus(r, "t.example"), "retry");
    const ok = fakeResolver({
      a: { "t.example": "servfail" },
      aaaa: { "t.example": ["2001:db8::1"] },
    });
    assertEquals(await hostStatus(ok, "t.example"), "ok");
  });
  await t.step("numeric and malformed names are notfound without a query", async () => {
    const r = fakeResolver({});
    for (const n of ["192.0.2.1", "bad..name", "-x.example", "a b", "x.example."]) {
      assertEquals(await hostStatus(r, n), "notfound", n);
    }
    assertEquals(r.queries, []);
  });
});

Deno.test("unknown: mail domains (reject_unknown_*_domain)", async (t) => {
  await t.step("MX first; a null MX ends the search", async () => {
    const r = fakeResolver({
      mx: { "null.example": [{ preference: 0, exchange: "." }] },
      a: { "null.example": ["192.0.2.1"], "aonly.example": ["192.0.2.2"] },
    });
    assertEquals(await mailhostStatus(r, "null.example"), "nullmx");
    assertEquals(await mailhostStatus(r, "aonly.example"), "ok");
    assertEquals(r.queries, ["MX null.example", "MX aonly.example", "A aonly.example"]);
  });
  await t.step("an MX that fails for now, then nothing: retry", async () => {
    const r = fakeResolver({ mx: { "t.example": "timeout" } });
    assertEquals(await mailhostStatus(r, "t.example"), "retry");
  });
  await t.step("a sandbox without DNS permission is an error, never notfound", async () => {
    const r = fakeResolver({});
    r.resolveMx = () => Promise.reject(new Deno.errors.NotCapable("net access to 10.0.0.53:53"));
    await assertRejects(() => mailhostStatus(r, "x.example"), DnsNotPermitted);
  });
});

Deno.test({
  name: "unknown: through a real name server, SERVFAIL is retry and NXDOMAIN notfound",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const { startDnsServer } = await import("../../tests/helpers/dns_server.ts");
    const { systemResolver } = await import("../../lib/dns/mod.ts");
    const dns = startDnsServer("127.0.0.1", 0, {
      names: {
        "aonly.test": { A: ["192.0.2.1"] },
        "nodata.test": { TXT: ["nothing else"] },
        "nullmx.test": { MX: [[0, "."]] },
      },
      servfail: ["sf.test"],
    });
    const r = systemResolver({ nameServer: { ipAddr: "127.0.0.1", port: dns.port } });
    try {
      await t.step("the four outcomes of a mail domain", async () => {
        assertEquals(await mailhostStatus(r, "aonly.test"), "ok");
        assertEquals(await mailhostStatus(r, "nullmx.test"), "nullmx");
        assertEquals(await mailhostStatus(r, "nx.test"), "notfound");
        assertEquals(await mailhostStatus(r, "nodata.test"), "notfound");
        assertEquals(await mailhostStatus(r, "x.sf.test"), "retry");
        assertEquals(await hostStatus(r, "x.sf.test"), "retry");
        assertEquals(await hostStatus(r, "nx.test"), "notfound");
      });
      await t.step("a name that answers asks no TCP question; one that does not, confirms", () => {
        const tcp = dns.queries.filter((q) => q.startsWith("TCP "));
        assertEquals(tcp.filter((q) => q.includes("aonly.test")), []);
        assertEquals(tcp.filter((q) => q.endsWith(" nx.test")).length, 6);
      });
    } finally {
      dns.close();
    }
  },
});
