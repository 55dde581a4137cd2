/**
 * Tests of the DNSSEC-aware resolver against a small DNS server of the
 * test's own on loopback (UDP and TCP on one port), which answers with
 * the AD bit set or not, truncates over UDP to force TCP, stays silent,
 * or sends a forged answer first. tests/helpers/dns_server.ts knows
 * neither TLSA, nor the AD and TC bits, nor EDNS, hence this one.
 */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { DnsError } from "../dns/mod.ts";
import { decodeMessage, decodeName, type DnsMessage, encodeName, RR_TYPES } from "../dns/wire.ts";
import { dnssecResolver, isLoopback } from "./resolver.ts";

type Rr = [name: string, type: keyof typeof RR_TYPES, rdata: number[]];

/** How the test server answers one query. */
interface Reply {
  rcode?: number;
  ad?: boolean;
  tc?: boolean;
  answers?: Rr[];
  /** First send an answer with the wrong id (a forgery that must be ignored). */
  forgeFirst?: boolean;
}

/** The bytes of a response to `query`. */
function response(query: Uint8Array, r: Reply, id = (query[0] << 8) | query[1]): Uint8Array {
  const qEnd = decodeName(query, 12).end + 4;
  const rrs = (r.answers ?? []).flatMap(([name, type, rdata]) => [
    ...encodeName(name),
    0,
    RR_TYPES[type],
    0,
    1,
    0,
    0,
    0,
    60,
    rdata.length >> 8,
    rdata.length & 0xff,
    ...rdata,
  ]);
  const flags = 0x8180 | (r.tc ? 0x0200 : 0) | (r.ad ? 0x20 : 0) | (r.rcode ?? 0);
  const n = r.answers?.length ?? 0;
  return new Uint8Array([
    id >> 8,
    id & 0xff,
    flags >> 8,
    flags & 0xff,
    0,
    1,
    n >> 8,
    n & 0xff,
    0,
    0,
    0,
    0,
    ...query.subarray(12, qEnd),
    ...rrs,
  ]);
}

/** Whether a query carries an OPT record with the DO bit (our queries put it last). */
function hasDo(query: Uint8Array): boolean {
  const opt = query.subarray(query.length - 11);
  return query[11] === 1 && opt[0] === 0 && opt[2] === 41 && (opt[7] & 0x80) !== 0;
}

interface TestServer {
  port: number;
  /** "udp"/"tcp", the question, and whether it asked for DNSSEC. */
  log: { via: string; q: DnsMessage; dnssecOk: boolean }[];
  close(): void;
}

/** Serves `answer` on `hostname` (UDP and TCP, one port); null from `answer` is silence. */
function serve(
  hostname: string,
  answer: (q: DnsMessage, via: "udp" | "tcp") => Reply | null,
): TestServer {
  let udp: Deno.DatagramConn;
  let tcp: Deno.Listener;
  for (let tries = 0;; tries++) {
    udp = Deno.listenDatagram({ transport: "udp", hostname, port: 0 });
    try {
      tcp = Deno.listen({ hostname, port: (udp.addr as Deno.NetAddr).port });
      break;
    } catch (e) {
      udp.close();
      if (!(e instanceof Deno.errors.AddrInUse) || tries > 20) throw e;
    }
  }
  const log: TestServer["log"] = [];
  const handle = (raw: Uint8Array, via: "udp" | "tcp") => {
    const q = decodeMessage(raw);
    log.push({ via, q, dnssecOk: hasDo(raw) });
    const r = answer(q, via);
    if (!r) return [];
    const out = [response(raw, r)];
    if (r.forgeFirst) out.unshift(response(raw, r, ((raw[0] << 8) | raw[1]) ^ 0xffff));
    return out;
  };
  (async () => {
    for await (const [data, addr] of udp) {
      for (const m of handle(data, "udp")) await udp.send(m, addr);
    }
  })().catch(() => {});
  const conns = new Set<Deno.Conn>();
  (async () => {
    for await (const c of tcp) {
      conns.add(c);
      (async () => {
        const buf = new Uint8Array(65537);
        let got = 0;
        for (;;) {
          const n = await c.read(buf.subarray(got));
          if (n === null) break;
          got += n;
          if (got >= 2 && got >= 2 + ((buf[0] << 8) | buf[1])) break;
        }
        for (const m of handle(buf.slice(2, 2 + ((buf[0] << 8) | buf[1])), "tcp")) {
          await c.write(new Uint8Array([m.length >> 8, m.length & 0xff, ...m]));
        }
      })().catch(() => {}).finally(() => {
        conns.delete(c);
        c.close();
      });
    }
  })().catch(() => {});
  return {
    port: (udp.addr as Deno.NetAddr).port,
    log,
    close: () => {
      udp.close();
      tcp.close();
      for (const c of conns) c.close();
    },
  };
}

const A = (name: string, ip: string): Rr => [name, "A", ip.split(".").map(Number)];
const TLSA = (name: string, u: number, s: number, m: number, data: number[]): Rr => [
  name,
  "TLSA",
  [u, s, m, ...data],
];
const DIGEST = Array.from({ length: 32 }, (_, i) => i * 7 & 0xff);

Deno.test("lib/dane dnssecResolver", async (t) => {
  const server = serve("127.0.0.1", (q, via) => {
    const name = q.question!.name;
    switch (name) {
      case "signed.test":
        return { ad: true, answers: [A(name, "192.0.2.1")] };
      case "unsigned.test":
        return { answers: [A(name, "192.0.2.2")] };
      case "alias.test":
        return {
          ad: true,
          answers: [[name, "CNAME", [...encodeName("real.test")]], A("real.test", "192.0.2.3")],
        };
      case "_25._tcp.big.test":
        // Over UDP only the TC bit, as a resolver does when the RRset does not fit.
        return via === "udp" ? { tc: true, ad: true } : {
          ad: true,
          answers: [TLSA(name, 3, 1, 1, DIGEST), TLSA(name, 2, 0, 2, new Array(64).fill(1))],
        };
      case "_25._tcp.plain.test":
        return { answers: [TLSA(name, 3, 1, 1, DIGEST)] };
      case "mx.test":
        return { ad: true, answers: [[name, "MX", [0, 10, ...encodeName("MX1.Mx.TEST")]]] };
      case "forged.test":
        return { ad: true, forgeFirst: true, answers: [A(name, "192.0.2.4")] };
      case "nodata.test":
        return { ad: true };
      case "bogus.test":
        return { rcode: 2 }; // what a validating resolver answers for bogus data
      case "silent.test":
        return null;
      default:
        return { rcode: 3, ad: true };
    }
  });
  const dns = dnssecResolver({ nameServer: { ipAddr: "127.0.0.1", port: server.port } });

  try {
    await t.step("the AD bit from a loopback name server makes an answer secure", async () => {
      assertEquals(await dns.a("signed.test"), {
        records: ["192.0.2.1"],
        secure: true,
        name: "signed.test",
      });
      assertEquals(server.log.at(-1)!.via, "udp");
      assert(server.log.at(-1)!.dnssecOk, "the query asks for DNSSEC (DO bit)");
    });

    await t.step("without the AD bit, an answer is insecure", async () => {
      assertEquals((await dns.a("unsigned.test")).secure, false);
      assertEquals((await dns.tlsa("_25._tcp.plain.test")).secure, false);
    });

    await t.step("a truncated UDP answer is asked again over TCP, with the DO bit", async () => {
      const before = server.log.length;
      const got = await dns.tlsa("_25._tcp.big.test");
      assertEquals(server.log.slice(before).map((l) => [l.via, l.dnssecOk]), [
        ["udp", true],
        ["tcp", true],
      ]);
      assertEquals(got.secure, true);
      assertEquals(got.records, [
        { usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(DIGEST) },
        { usage: 2, selector: 0, matchingType: 2, data: new Uint8Array(64).fill(1) },
      ]);
    });

    await t.step("CNAME chains: the records of the last name, and that name", async () => {
      assertEquals(await dns.a("alias.test"), {
        records: ["192.0.2.3"],
        secure: true,
        name: "real.test",
      });
    });

    await t.step("MX exchanges are normalised", async () => {
      assertEquals((await dns.mx("mx.test")).records, [{
        preference: 10,
        exchange: "mx1.mx.test",
      }]);
    });

    await t.step("an answer with the wrong id is ignored, the real one taken", async () => {
      assertEquals((await dns.a("forged.test")).records, ["192.0.2.4"]);
    });

    await t.step("NXDOMAIN and no data are notfound, SERVFAIL temporary", async () => {
      const fails = async (name: string) => {
        try {
          await dns.a(name);
        } catch (e) {
          assert(e instanceof DnsError, String(e));
          return [e.kind, e.status];
        }
        throw new Error(`${name} resolved`);
      };
      assertEquals(await fails("missing.test"), ["notfound", "nxdomain"]);
      assertEquals(await fails("nodata.test"), ["notfound", "nodata"]);
      assertEquals(await fails("bogus.test"), ["temporary", "servfail"]);
    });

    await t.step("a silent name server is a temporary failure within the time limit", async () => {
      const quick = dnssecResolver({
        nameServer: { ipAddr: "127.0.0.1", port: server.port },
        timeoutMs: 300,
      });
      const start = Date.now();
      const e = await assertRejects(() => quick.a("silent.test"), DnsError);
      assertEquals([e.kind, e.status], ["temporary", "timeout"]);
      assert(Date.now() - start < 2000, `took ${Date.now() - start} ms`);
    });

    await t.step("no name server: unreadable or empty resolv.conf is temporary", async () => {
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/resolv.conf`, "# nothing\nsearch example.test\n");
        for (const resolvConf of [`${dir}/resolv.conf`, `${dir}/missing`]) {
          const e = await assertRejects(() => dnssecResolver({ resolvConf }).a("x.test"), DnsError);
          assertEquals(e.kind, "temporary");
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  } finally {
    server.close();
  }

  await t.step("IPv6 loopback is trusted too", async () => {
    let v6: TestServer;
    try {
      v6 = serve("::1", (q) => ({ ad: true, answers: [A(q.question!.name, "192.0.2.6")] }));
    } catch (e) {
      // Not a missing peer: a host without IPv6 is no failure, even in CI.
      return console.warn(`SKIPPED: no IPv6 loopback (${(e as Error).message})`);
    }
    try {
      const got = await dnssecResolver({ nameServer: { ipAddr: "::1", port: v6.port } }).a(
        "six.test",
      );
      assertEquals([got.records, got.secure], [["192.0.2.6"], true]);
    } finally {
      v6.close();
    }
  });

  await t.step("only loopback name servers are trusted with the AD bit", () => {
    for (
      const ip of ["127.0.0.1", "127.0.0.53", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "[::1]"]
    ) {
      assert(isLoopback(ip), ip);
    }
    for (
      const ip of [
        "10.255.255.53",
        "192.0.2.1",
        "::",
        "::2",
        "2001:db8::1",
        "1127.0.0.1",
        "127.0.0.1.example",
      ]
    ) {
      assert(!isLoopback(ip), ip);
    }
  });
});
