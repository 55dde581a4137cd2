/**
 * The system resolver against a real name server (tests/helpers/dns_server.ts
 * on a loopback port, UDP for Deno.resolveDns and TCP for the confirmation):
 * NXDOMAIN and no data are permanent, SERVFAIL, REFUSED, a time-out and an
 * unconfirmable answer temporary; resolv.conf parsing; hostile TCP answers.
 */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { startDnsServer, type Zone } from "../../tests/helpers/dns_server.ts";
import { confirmNegative, parseResolvConf } from "./confirm.ts";
import { classifyDnsError, DnsError, type FullResolver, systemResolver } from "./mod.ts";

const ZONE: Zone = {
  names: {
    "ok.test": { A: ["192.0.2.1"], MX: [[10, "mx.ok.test"]], TXT: ["hello"] },
    "nodata.test": { TXT: ["no addresses"] },
    "1.2.0.192.in-addr.arpa": { PTR: ["ok.test"] },
  },
  servfail: ["sf.test"],
  refused: ["rf.test"],
  silent: ["quiet.test"],
};

/** How a lookup ended: the records, or the DnsError's kind and status. */
async function outcome(p: Promise<unknown>, name: string): Promise<unknown> {
  try {
    return await p;
  } catch (e) {
    const d = classifyDnsError(e, name, "A");
    return `${d.kind}/${d.status}: ${d.detail}`;
  }
}

Deno.test({
  name: "lib/dns system resolver: negative answers confirmed over TCP",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const server = startDnsServer("127.0.0.1", 0, ZONE);
    const udpOnly = startDnsServer("127.0.0.1", 0, ZONE, { tcp: false });
    const warnings: string[] = [];
    const resolver = (port: number, timeoutMs = 3000): FullResolver =>
      systemResolver({
        nameServer: { ipAddr: "127.0.0.1", port },
        timeoutMs,
        warn: (m) => warnings.push(m),
      });
    try {
      const r = resolver(server.port);
      await t.step("records come from the fast path, without a TCP query", async () => {
        server.queries.length = 0;
        assertEquals(await r.resolveA("ok.test"), ["192.0.2.1"]);
        assertEquals((await r.resolveMx("ok.test")).map((m) => ({ ...m })), [
          { preference: 10, exchange: "mx.ok.test." },
        ]);
        assertEquals(await r.resolveTxt("ok.test"), [["hello"]]);
        assertEquals(await r.resolvePtr("1.2.0.192.in-addr.arpa"), ["ok.test."]);
        assert(!server.queries.some((q) => q.startsWith("TCP")), server.queries.join());
      });
      await t.step("NXDOMAIN and no data: permanent, told apart", async () => {
        assertEquals(
          await outcome(r.resolveA("nx.test"), "nx.test"),
          "notfound/nxdomain: Host not found",
        );
        assertEquals(
          await outcome(r.resolveA("nodata.test"), "nodata.test"),
          "notfound/nodata: Host found but no data record of requested type",
        );
        assertEquals(
          await outcome(r.resolveMx("nodata.test"), "nodata.test"),
          "notfound/nodata: Host found but no data record of requested type",
        );
        assert(server.queries.includes("TCP A nx.test"), server.queries.join());
      });
      await t.step("SERVFAIL and REFUSED: temporary", async () => {
        for (const name of ["x.sf.test", "rf.test"]) {
          assertEquals(
            await outcome(r.resolveMx(name), name),
            "temporary/servfail: Host not found, try again",
          );
        }
      });
      await t.step("a silent server: temporary within the time limit", async () => {
        const start = Date.now();
        assertEquals(
          await outcome(resolver(server.port, 1500).resolveA("quiet.test"), "quiet.test"),
          "temporary/timeout: Host not found, try again (timed out)",
        );
        assert(Date.now() - start < 2500, `${Date.now() - start} ms`);
      });
      await t.step("the unconfirmed resolver: a SERVFAIL is a bare NotFound", async () => {
        await assertRejects(() => r.unconfirmed!.resolveA("x.sf.test"), Deno.errors.NotFound);
        assertEquals(await r.unconfirmed!.resolveA("ok.test"), ["192.0.2.1"]);
      });
      await t.step("no TCP: temporary (never a bounce), and one warning per outage", async () => {
        warnings.length = 0;
        const u = resolver(udpOnly.port);
        for (const name of ["nx.test", "nodata.test", "x.sf.test"]) {
          assertEquals(
            await outcome(u.resolveA(name), name),
            "temporary/unverified: Host not found, try again",
          );
        }
        assertEquals(warnings.length, 1, warnings.join("\n"));
        assert(/cannot tell a missing name from a failed lookup/.test(warnings[0]), warnings[0]);
        assert(/127\.0\.0\.1:\d+: Connection refused/i.test(warnings[0]), warnings[0]);
        assertEquals(await u.resolveA("ok.test"), ["192.0.2.1"]);
      });
      await t.step("a server that closes TCP connections: temporary, and one warning", async () => {
        const closing = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        (async () => {
          for await (const c of closing) c.close();
        })().catch(() => {});
        warnings.length = 0;
        const closingPort = (closing.addr as Deno.NetAddr).port;
        try {
          const c = await confirmNegative("nx.test", "A", {
            nameServer: { ipAddr: "127.0.0.1", port: udpOnly.port },
            connect: () => Deno.connect({ hostname: "127.0.0.1", port: closingPort }),
          });
          assertEquals(c, {
            status: "unreachable",
            detail: `127.0.0.1:${udpOnly.port}: connection closed before the answer; ` +
              `127.0.0.1:${udpOnly.port}: connection closed before the answer`,
          });
          // The same through the resolver: Deno asks the server's UDP side, TCP is closed.
          const closed = startDnsServer("127.0.0.1", 0, ZONE, { tcp: false });
          const again = Deno.listen({ hostname: "127.0.0.1", port: closed.port });
          (async () => {
            for await (const c of again) c.close();
          })().catch(() => {});
          try {
            const u = resolver(closed.port);
            for (const name of ["nx.test", "nodata.test"]) {
              assertEquals(
                await outcome(u.resolveA(name), name),
                "temporary/unverified: Host not found, try again",
              );
            }
            assertEquals(warnings.length, 1, warnings.join("\n"));
            assert(/connection closed before the answer/.test(warnings[0]), warnings[0]);
          } finally {
            again.close();
            closed.close();
          }
        } finally {
          closing.close();
        }
      });
      await t.step(
        "records on the second try are returned (the first was a passing failure)",
        async () => {
          // The "UDP" server says NXDOMAIN, the TCP one (another zone) has the record.
          const other = startDnsServer("127.0.0.1", 0, {
            names: { "late.test": { A: ["192.0.2.9"], MX: [[5, "mx.late.test"]] } },
          });
          try {
            const c = await confirmNegative("late.test", "A", {
              nameServer: { ipAddr: "127.0.0.1", port: server.port },
              connect: (o) => Deno.connect({ hostname: o.hostname, port: other.port }),
            });
            assertEquals(c.status, "records");
            assert(c.status === "records");
            assertEquals(c.records.map((x) => x.data), ["192.0.2.9"]);
          } finally {
            other.close();
          }
        },
      );
      await t.step("a DnsError says which answer it was", () => {
        const e = new DnsError("notfound", "x.test", "MX", "Host not found", "nxdomain");
        assertEquals([e.permanent, e.status], [true, "nxdomain"]);
        assertEquals(e.message, "Name service error for name=x.test type=MX: Host not found");
      });
    } finally {
      server.close();
      udpOnly.close();
    }
  },
});

Deno.test({
  name: "lib/dns confirmation: hostile TCP answers are no answer, never a hang",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    /** A TCP server that answers each connection with `reply(query)`, then closes. */
    const hostile = (reply: (q: Uint8Array) => Uint8Array | null) => {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      (async () => {
        for await (const c of l) {
          (async () => {
            const buf = new Uint8Array(600);
            const n = (await c.read(buf).catch(() => null)) ?? 0;
            const r = reply(buf.subarray(2, n));
            if (r) await c.write(r).catch(() => 0);
            if (r === null) await new Promise((res) => setTimeout(res, 3000));
            try {
              c.close();
            } catch {
              // closed
            }
          })();
        }
      })().catch(() => {});
      return { port: (l.addr as Deno.NetAddr).port, close: () => l.close() };
    };
    const frame = (m: number[]) => new Uint8Array([m.length >> 8, m.length & 0xff, ...m]);
    const cases: [string, (q: Uint8Array) => Uint8Array | null, RegExp][] = [
      ["garbage", () => frame([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]), /./],
      [
        "another id",
        (q) => frame([q[0] ^ 0xff, q[1], 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0]),
        /does not match/,
      ],
      [
        "NXDOMAIN without the question",
        (q) => frame([q[0], q[1], 0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0]),
        /does not match/,
      ],
      ["a length longer than what follows", () => new Uint8Array([0xff, 0xff, 1, 2, 3]), /closed/],
      ["a query echoed back (no QR bit)", (q) => frame(Array.from(q)), /does not match/],
      ["nothing at all", () => null, /no answer within/],
    ];
    for (const [what, reply, detail] of cases) {
      await t.step(what, async () => {
        const h = hostile(reply);
        try {
          const start = Date.now();
          const c = await confirmNegative("x.test", "A", {
            nameServer: { ipAddr: "127.0.0.1", port: h.port },
            deadline: Date.now() + 1000,
          });
          // Only silence is a time-out; an unusable answer leaves the answer unknown.
          const want = what === "nothing at all" ? "timeout" : "unreachable";
          assert(c.status === want, JSON.stringify(c));
          assert(detail.test(c.detail), c.detail);
          assert(Date.now() - start < 2000, `${Date.now() - start} ms`);
        } finally {
          h.close();
        }
      });
    }
  },
});

Deno.test("lib/dns resolv.conf: name servers (three at most), timeout and attempts with glibc's limits", () => {
  assertEquals(
    parseResolvConf(
      "# comment\nnameserver 10.0.0.1\nnameserver fe80::1%eth0 ; note\nsearch a.test\n" +
        "nameserver 10.0.0.3\nnameserver 10.0.0.4\noptions ndots:2 timeout:1 attempts:3 rotate\n",
    ),
    { nameservers: ["10.0.0.1", "fe80::1", "10.0.0.3"], timeoutMs: 1000, attempts: 3 },
  );
  assertEquals(parseResolvConf("options timeout:99 attempts:0"), {
    nameservers: [],
    timeoutMs: 30_000,
    attempts: 1,
  });
  assertEquals(parseResolvConf(""), { nameservers: [], timeoutMs: 5000, attempts: 2 });
});

Deno.test("lib/dns confirmation without resolv.conf: unreachable, with the reason", async () => {
  const c = await confirmNegative("x.test", "A", { resolvConf: "/nonexistent/resolv.conf" });
  assert(c.status === "unreachable" && /cannot read \/nonexistent\/resolv\.conf/.test(c.detail));
});

Deno.test({
  name:
    "lib/dns lookupHost: an IPv4-only host costs no TCP query; a host without addresses is confirmed",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { lookupHost } = await import("./mod.ts");
    const server = startDnsServer("127.0.0.1", 0, ZONE);
    try {
      const r = systemResolver({ nameServer: { ipAddr: "127.0.0.1", port: server.port } });
      const both = { ipv4: true, ipv6: true };
      assertEquals(await lookupHost(r, "ok.test", both), ["192.0.2.1"]);
      assertEquals(server.queries.filter((q) => q.startsWith("TCP")), []);
      assertEquals(
        await outcome(lookupHost(r, "nodata.test", both), "nodata.test"),
        "notfound/nodata: Host found but no data record of requested type",
      );
      assertEquals(
        await outcome(lookupHost(r, "x.sf.test", both), "x.sf.test"),
        "temporary/servfail: Host not found, try again",
      );
      // Sorted: the two families are asked at once.
      assertEquals(server.queries.filter((q) => q.startsWith("TCP")).sort(), [
        "TCP A nodata.test",
        "TCP A x.sf.test",
        "TCP AAAA nodata.test",
        "TCP AAAA x.sf.test",
      ]);
    } finally {
      server.close();
    }
  },
});
