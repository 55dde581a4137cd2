import { assertEquals } from "../../tests/helpers/assert.ts";
import { peerIdentity, peerName, type PeerResolver, reverseName } from "./peername.ts";

function fake(ptr: Record<string, string[]>, a: Record<string, string[]>): PeerResolver {
  const look = (t: Record<string, string[]>) => (n: string) =>
    t[n] ? Promise.resolve(t[n]) : Promise.reject(new Deno.errors.NotFound(n));
  return { resolvePtr: look(ptr), resolveA: look(a), resolveAaaa: look(a) };
}

Deno.test("peerName", async (t) => {
  const hosts = new Map([["192.0.2.9", "gw.example"]]);
  await t.step("reverse names", () => {
    assertEquals(reverseName("192.0.2.1"), "1.2.0.192.in-addr.arpa");
    assertEquals(
      reverseName("2001:db8::1"),
      "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
  });
  await t.step("/etc/hosts first, loopback is localhost", async () => {
    assertEquals(await peerName("192.0.2.9", { hosts, resolver: null }), "gw.example");
    assertEquals(await peerName("127.0.0.1", { hosts, resolver: null }), "localhost");
    assertEquals(await peerName("127.0.0.2", { hosts, resolver: null }), "unknown");
  });
  await t.step("forward-confirmed PTR", async () => {
    const r = fake({ "1.2.0.192.in-addr.arpa": ["Mail.Example.org."] }, {
      "Mail.Example.org": ["192.0.2.1"],
    });
    assertEquals(await peerName("192.0.2.1", { hosts, resolver: r }), "mail.example.org");
  });
  await t.step("PTR that does not resolve back is unknown", async () => {
    const r = fake({ "1.2.0.192.in-addr.arpa": ["liar.example."] }, {
      "liar.example": ["198.51.100.7"],
    });
    assertEquals(await peerName("192.0.2.1", { hosts, resolver: r }), "unknown");
  });
  await t.step("no PTR or a failing resolver is unknown", async () => {
    assertEquals(await peerName("192.0.2.1", { hosts, resolver: fake({}, {}) }), "unknown");
    const broken: PeerResolver = {
      resolvePtr: () => Promise.reject(new Error("timed out")),
      resolveA: () => Promise.reject(new Error("x")),
      resolveAaaa: () => Promise.reject(new Error("x")),
    };
    assertEquals(await peerName("192.0.2.1", { hosts, resolver: broken }), "unknown");
  });
});

Deno.test("peerIdentity: Postfix's name and reverse-name status", async (t) => {
  const hosts = new Map<string, string>();
  const rev = "1.2.0.192.in-addr.arpa";
  const fail = (e: Error) => () => Promise.reject(e);
  await t.step("confirmed: both names, both ok", async () => {
    const warnings: string[] = [];
    const r = fake({ [rev]: ["mail.example.org."] }, { "mail.example.org": ["192.0.2.1"] });
    assertEquals(
      await peerIdentity("192.0.2.1", { hosts, resolver: r, warn: (m) => warnings.push(m) }),
      {
        name: "mail.example.org",
        nameStatus: "ok",
        reverseName: "mail.example.org",
        reverseStatus: "ok",
      },
    );
    assertEquals(warnings, []);
  });
  await t.step("a PTR that resolves elsewhere is forged; the reverse name stays", async () => {
    const warnings: string[] = [];
    const r = fake({ [rev]: ["liar.example."] }, { "liar.example": ["198.51.100.7"] });
    assertEquals(
      await peerIdentity("192.0.2.1", { hosts, resolver: r, warn: (m) => warnings.push(m) }),
      {
        name: "unknown",
        nameStatus: "forged",
        reverseName: "liar.example",
        reverseStatus: "ok",
      },
    );
    assertEquals(warnings, ["hostname liar.example does not resolve to address 192.0.2.1"]);
  });
  await t.step("a PTR name without addresses is forged, with the resolver's reason", async () => {
    const warnings: string[] = [];
    const r = fake({ [rev]: ["gone.example."] }, {});
    const id = await peerIdentity("192.0.2.1", {
      hosts,
      resolver: r,
      warn: (m) => warnings.push(m),
    });
    assertEquals([id.nameStatus, id.reverseStatus], ["forged", "ok"]);
    assertEquals(warnings, [
      "hostname gone.example does not resolve to address 192.0.2.1: Name or service not known",
    ]);
  });
  await t.step("a forward lookup that fails for now is temp", async () => {
    const r = fake({ [rev]: ["slow.example."] }, {});
    r.resolveA = fail(new Deno.errors.TimedOut("x"));
    const id = await peerIdentity("192.0.2.1", { hosts, resolver: r });
    assertEquals([id.name, id.nameStatus, id.reverseName, id.reverseStatus], [
      "unknown",
      "temp",
      "slow.example",
      "ok",
    ]);
  });
  await t.step("no PTR is perm; a PTR lookup that fails for now is temp", async () => {
    const none = await peerIdentity("192.0.2.1", { hosts, resolver: fake({}, {}) });
    assertEquals([none.nameStatus, none.reverseStatus], ["perm", "perm"]);
    const r = fake({}, {});
    r.resolvePtr = fail(new Error("SERVFAIL"));
    const temp = await peerIdentity("192.0.2.1", { hosts, resolver: r });
    assertEquals([temp.name, temp.nameStatus, temp.reverseName, temp.reverseStatus], [
      "unknown",
      "temp",
      "unknown",
      "temp",
    ]);
  });
  await t.step("numeric and malformed PTR names are no names", async () => {
    const warnings: string[] = [];
    const r = fake({ [rev]: ["192.0.2.1."] }, { "192.0.2.1": ["192.0.2.1"] });
    const id = await peerIdentity("192.0.2.1", {
      hosts,
      resolver: r,
      warn: (m) => warnings.push(m),
    });
    assertEquals([id.name, id.nameStatus, id.reverseStatus], ["unknown", "perm", "perm"]);
    assertEquals(warnings, ["numeric hostname: 192.0.2.1"]);
    const bad = fake({ [rev]: ["bad_name..example."] }, {});
    assertEquals((await peerIdentity("192.0.2.1", { hosts, resolver: bad })).reverseStatus, "perm");
  });
  await t.step("without lookups every name is unknown, perm", async () => {
    assertEquals(await peerIdentity("192.0.2.1", { hosts, resolver: null }), {
      name: "unknown",
      nameStatus: "perm",
      reverseName: "unknown",
      reverseStatus: "perm",
    });
  });
});

Deno.test({
  name: "peerIdentity through a real name server: NXDOMAIN is perm, SERVFAIL temp",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { startDnsServer } = await import("../../tests/helpers/dns_server.ts");
    const { systemResolver } = await import("../../lib/dns/mod.ts");
    const dns = startDnsServer("127.0.0.1", 0, {
      names: {
        "1.2.0.192.in-addr.arpa": { PTR: ["good.test"] },
        "good.test": { A: ["192.0.2.1"] },
        "2.2.0.192.in-addr.arpa": { PTR: ["broken.sf.test"] },
        "3.2.0.192.in-addr.arpa": { PTR: ["gone.test"] },
      },
      servfail: ["4.2.0.192.in-addr.arpa", "sf.test"],
    });
    try {
      const resolver = systemResolver({ nameServer: { ipAddr: "127.0.0.1", port: dns.port } });
      const id = (addr: string) => peerIdentity(addr, { hosts: new Map(), resolver });
      const status = async (addr: string) => {
        const p = await id(addr);
        return [p.name, p.nameStatus, p.reverseName, p.reverseStatus];
      };
      assertEquals(await status("192.0.2.1"), ["good.test", "ok", "good.test", "ok"]);
      assertEquals(await status("192.0.2.2"), ["unknown", "temp", "broken.sf.test", "ok"]);
      assertEquals(await status("192.0.2.3"), ["unknown", "forged", "gone.test", "ok"]);
      assertEquals(await status("192.0.2.4"), ["unknown", "temp", "unknown", "temp"]);
      assertEquals(await status("192.0.2.5"), ["unknown", "perm", "unknown", "perm"]);
    } finally {
      dns.close();
    }
  },
});
