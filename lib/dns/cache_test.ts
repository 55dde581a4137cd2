/**
 * The caching resolver (cache.ts) against a real name server on loopback
 * (tests/helpers/dns_server.ts, TCP): answers kept for their TTL and no
 * longer, negative answers for the SOA's negative TTL, failures never,
 * one query for concurrent lookups, the size bound; and the SOA decoding
 * it relies on (wire.ts negativeTtl).
 */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { startDnsServer, type Zone } from "../../tests/helpers/dns_server.ts";
import { cachingResolver } from "./cache.ts";
import { DnsError } from "./mod.ts";

const ZONE: Zone = {
  names: {
    "example.test": { TXT: ["v=spf1 -all"], A: ["192.0.2.1"], MX: [[10, "mx.example.test"]] },
    "_dmarc.example.test": { TXT: ["v=DMARC1; p=reject"] },
  },
  servfail: ["broken.test"],
  ttl: 300,
  soa: { ttl: 900, minimum: 120 },
};

Deno.test({
  name: "lib/dns caching resolver: answers kept for their TTLs",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const server = startDnsServer("127.0.0.1", 0, ZONE);
    let clock = 1_000_000;
    const make = (zoneOpts: Partial<Parameters<typeof cachingResolver>[0]> = {}) =>
      cachingResolver({
        nameServer: { ipAddr: "127.0.0.1", port: server.port },
        timeoutMs: 3000,
        now: () => clock,
        ...zoneOpts,
      });
    const tcp = () => server.queries.filter((q) => q.startsWith("TCP")).length;
    try {
      await t.step("records: asked once within the TTL, again after it", async () => {
        const r = make();
        const before = tcp();
        assertEquals(await r.resolveTxt("example.test"), [["v=spf1 -all"]]);
        assertEquals(await r.resolveTxt("EXAMPLE.test."), [["v=spf1 -all"]]);
        assertEquals(tcp() - before, 1);
        clock += 299_000;
        assertEquals(await r.resolveTxt("example.test"), [["v=spf1 -all"]]);
        assertEquals(tcp() - before, 1);
        clock += 2000; // past 300 s
        assertEquals(await r.resolveTxt("example.test"), [["v=spf1 -all"]]);
        assertEquals(tcp() - before, 2);
        // Other types are other answers; MX as Deno gives it.
        assertEquals(await r.resolveMx("example.test"), [
          { preference: 10, exchange: "mx.example.test." },
        ]);
        assertEquals(tcp() - before, 3);
      });

      await t.step("a caller that changes an answer does not change the cache", async () => {
        const r = make();
        const txt = await r.resolveTxt("_dmarc.example.test");
        txt[0][0] = "tampered";
        txt.push(["more"]);
        assertEquals(await r.resolveTxt("_dmarc.example.test"), [["v=DMARC1; p=reject"]]);
      });

      await t.step("NXDOMAIN and no data: kept for the SOA's negative TTL", async () => {
        const r = make();
        const before = tcp();
        for (let i = 0; i < 2; i++) {
          const e = await assertRejects(() => r.resolveTxt("nx.example.test"), DnsError);
          assertEquals([e.kind, e.status], ["notfound", "nxdomain"]);
          const d = await assertRejects(() => r.resolveAaaa("example.test"), DnsError);
          assertEquals([d.kind, d.status], ["notfound", "nodata"]);
        }
        assertEquals(tcp() - before, 2);
        clock += 121_000; // min(SOA TTL 900, MINIMUM 120)
        await assertRejects(() => r.resolveTxt("nx.example.test"), DnsError);
        assertEquals(tcp() - before, 3);
      });

      await t.step("negative answers capped by maxNegativeTtlS, records by maxTtlS", async () => {
        const r = make({ maxNegativeTtlS: 10, maxTtlS: 20 });
        const before = tcp();
        await assertRejects(() => r.resolveTxt("nx2.example.test"), DnsError);
        await r.resolveA("example.test");
        clock += 11_000;
        await assertRejects(() => r.resolveTxt("nx2.example.test"), DnsError);
        await r.resolveA("example.test");
        assertEquals(tcp() - before, 3);
        clock += 10_000;
        await r.resolveA("example.test");
        assertEquals(tcp() - before, 4);
      });

      await t.step("SERVFAIL is temporary and never kept", async () => {
        const r = make();
        const before = tcp();
        for (let i = 0; i < 2; i++) {
          const e = await assertRejects(() => r.resolveTxt("broken.test"), DnsError);
          assertEquals(e.kind, "temporary");
        }
        assertEquals(tcp() - before, 2);
        assertEquals(r.size, 0);
      });

      await t.step("concurrent lookups share one query", async () => {
        const r = make();
        const before = tcp();
        const all = await Promise.all(
          Array.from({ length: 10 }, () => r.resolveA("example.test")),
        );
        assert(all.every((a) => a[0] === "192.0.2.1"));
        assertEquals(tcp() - before, 1);
        assertEquals(r.queries, 1);
      });

      await t.step("at most maxEntries answers, the least recently used dropped", async () => {
        const r = make({ maxEntries: 2 });
        await r.resolveA("example.test");
        await r.resolveTxt("example.test");
        await r.resolveA("example.test"); // used again: now the newest
        await r.resolveMx("example.test"); // drops TXT
        assertEquals(r.size, 2);
        const before = tcp();
        await r.resolveA("example.test");
        assertEquals(tcp() - before, 0);
        await r.resolveTxt("example.test");
        assertEquals(tcp() - before, 1);
      });

      await t.step("a TTL of 0 is not kept", async () => {
        const zero = startDnsServer("127.0.0.1", 0, { ...ZONE, ttl: 0 });
        try {
          const r = cachingResolver({
            nameServer: { ipAddr: "127.0.0.1", port: zero.port },
            timeoutMs: 3000,
          });
          await r.resolveA("example.test");
          await r.resolveA("example.test");
          assertEquals([r.queries, r.size], [2, 0]);
        } finally {
          zero.close();
        }
      });
    } finally {
      server.close();
    }
  },
});
