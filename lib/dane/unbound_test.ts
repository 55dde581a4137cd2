/**
 * Interop with a real validating resolver: unbound on loopback serves a
 * DNSSEC-signed zone (signed here with ldns-signzone, its key the trust
 * anchor), an unsigned one, and a signed zone with one record altered
 * after signing. The resolver must say secure, insecure and fail (SERVFAIL,
 * "defer") for them, over UDP and, for an RRset too big for 1232 octets,
 * over TCP with the DO bit. Needs unbound and ldnsutils (Debian packages):
 * without them the test skips loudly, and fails under CI=true.
 */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { havePeer } from "../../tests/helpers/peers.ts";
import { startUnbound, UNBOUND_PROGRAMS } from "../../tests/helpers/unbound.ts";
import { DnsError } from "../dns/mod.ts";
import { daneLevel, lookupTlsa } from "./level.ts";
import { dnssecResolver } from "./resolver.ts";

const DIGEST = "0123456789abcdef".repeat(4);

/** The same records in a signed and an unsigned zone, and what only the signed one has. */
function records(extra: string): string {
  return `@ MX 10 mx\nmx A 192.0.2.10\n_25._tcp.mx TLSA 3 1 1 ${DIGEST}\n${extra}`;
}

/** An address and a TLSA record changed after signing: their signatures fail (bogus). */
function alter(signed: string): string {
  const altered = signed
    .replace(/^(bogus\.signed\.test\.\s+\d+\s+IN\s+A\s+)192\.0\.2\.66$/m, "$1192.0.2.99")
    .replace(/^(_25\._tcp\.bad\.signed\.test\.\s+\d+\s+IN\s+TLSA\s+3 1 1 )0/m, "$1f");
  assert(altered.split("\n").filter((l, i) => l !== signed.split("\n")[i]).length === 2);
  return altered;
}

Deno.test({
  name: "lib/dane dnssecResolver against unbound (validating, on loopback)",
  ignore: !UNBOUND_PROGRAMS.every(havePeer),
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    // Four 3 0 0 records of 400 octets do not fit in a 1232-octet UDP answer.
    const big = Array.from(
      { length: 4 },
      (_, i) => `_25._tcp.big TLSA 3 0 0 ${`0${i}`.repeat(400)}\n`,
    );
    const unbound = await startUnbound(dir, {
      zones: [
        {
          origin: "signed.test",
          signed: true,
          records: records(
            `alias CNAME mx\nbogus A 192.0.2.66\nbad A 192.0.2.11\n` +
              `_25._tcp.bad TLSA 3 1 1 ${DIGEST}\n${big.join("")}`,
          ),
          alter,
        },
        { origin: "plain.test", signed: false, records: records("") },
      ],
    }).catch(async (e) => {
      await Deno.remove(dir, { recursive: true });
      throw e;
    });
    const dns = dnssecResolver({
      nameServer: { ipAddr: unbound.hostname, port: unbound.port },
      timeoutMs: 5000,
    });
    try {
      await t.step("a signed zone is secure, MX, A and TLSA", async () => {
        const mx = await dns.mx("signed.test");
        assertEquals([mx.records, mx.secure], [
          [{ preference: 10, exchange: "mx.signed.test" }],
          true,
        ]);
        assertEquals((await dns.a("mx.signed.test")).secure, true);
        const tlsa = await dns.tlsa("_25._tcp.mx.signed.test");
        assertEquals(tlsa.secure, true);
        assertEquals(
          tlsa.records.map((r) => [r.usage, r.selector, r.matchingType, r.data.length]),
          [
            [3, 1, 1, 32],
          ],
        );
      });

      await t.step("a secure CNAME chain gives the canonical name", async () => {
        assertEquals(await dns.a("alias.signed.test"), {
          records: ["192.0.2.10"],
          secure: true,
          name: "mx.signed.test",
        });
      });

      await t.step("an RRset over 1232 octets comes over TCP, still secure", async () => {
        const big = await dns.tlsa("_25._tcp.big.signed.test");
        assertEquals([big.records.length, big.secure], [4, true]);
      });

      await t.step("an unsigned zone is insecure", async () => {
        assertEquals((await dns.a("mx.plain.test")).secure, false);
        assertEquals((await dns.tlsa("_25._tcp.mx.plain.test")).secure, false);
      });

      await t.step("a record altered after signing is SERVFAIL (bogus): temporary", async () => {
        const e = await assertRejects(() => dns.a("bogus.signed.test"), DnsError);
        assertEquals([e.kind, e.status], ["temporary", "servfail"]);
        assertEquals((await dns.a("bad.signed.test")).secure, true);
        await assertRejects(() => dns.tlsa("_25._tcp.bad.signed.test"), DnsError);
      });

      await t.step("secure denial: NXDOMAIN and NODATA are notfound", async () => {
        const nx = await assertRejects(() => dns.tlsa("_25._tcp.none.signed.test"), DnsError);
        assertEquals([nx.kind, nx.status], ["notfound", "nxdomain"]);
        const nodata = await assertRejects(() => dns.aaaa("mx.signed.test"), DnsError);
        assertEquals([nodata.kind, nodata.status], ["notfound", "nodata"]);
      });

      await t.step("the decision end to end: dane, may, defer", async () => {
        const level = async (domain: string, host: string) => {
          const mx = await dns.mx(domain);
          const addr = await dns.a(host);
          const tlsa = await lookupTlsa(dns, host, { canonical: addr.name });
          return daneLevel({ mxSecure: mx.secure, hostSecure: addr.secure, tlsa }).level;
        };
        assertEquals(await level("signed.test", "mx.signed.test"), "dane");
        assertEquals(await level("signed.test", "alias.signed.test"), "dane");
        assertEquals(await level("plain.test", "mx.plain.test"), "may");
        assertEquals(await level("signed.test", "bad.signed.test"), "defer");
      });
    } finally {
      await unbound.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
