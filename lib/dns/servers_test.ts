/**
 * postwarden_dns_servers (confirm.ts useNameServers): the value's syntax,
 * and every resolver of the process asking the configured name server,
 * on its own port, instead of resolv.conf's: the system resolver's fast
 * path (Deno.resolveDns), its TCP confirmation and the caching resolver.
 */
import { assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import { startDnsServer } from "../../tests/helpers/dns_server.ts";
import { cachingResolver } from "./cache.ts";
import { configuredNameServers, parseNameServers, useNameServers } from "./confirm.ts";
import { DnsError, systemResolver } from "./mod.ts";

Deno.test("lib/dns parseNameServers", () => {
  assertEquals(parseNameServers(""), []);
  assertEquals(parseNameServers("192.0.2.53, 127.0.0.1:5353 ::1 [2001:db8::1]:5300"), [
    { ipAddr: "192.0.2.53", port: 53 },
    { ipAddr: "127.0.0.1", port: 5353 },
    { ipAddr: "::1", port: 53 },
    { ipAddr: "2001:db8::1", port: 5300 },
  ]);
  for (const bad of ["ns.example.com", "192.0.2.256", "127.0.0.1:0", "127.0.0.1:70000", "[::1]x"]) {
    assertThrows(() => parseNameServers(bad), Error, "not a name server address");
  }
});

Deno.test({
  name: "lib/dns useNameServers: every lookup asks the configured name server",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const server = startDnsServer("127.0.0.1", 0, {
      names: { "only.here.test": { A: ["192.0.2.7"], TXT: ["configured"] } },
    });
    useNameServers([{ ipAddr: "127.0.0.1", port: server.port }]);
    try {
      assertEquals(configuredNameServers(), [{ ipAddr: "127.0.0.1", port: server.port }]);
      // resolv.conf is not even read for the servers.
      const r = systemResolver({ timeoutMs: 3000, resolvConf: "/nonexistent/resolv.conf" });
      assertEquals(await r.resolveA("only.here.test"), ["192.0.2.7"]);
      const e = await assertRejects(() => r.resolveA("nx.only.here.test"), DnsError);
      assertEquals(e.status, "nxdomain"); // confirmed over TCP with the same server
      const c = cachingResolver({ timeoutMs: 3000, resolvConf: "/nonexistent/resolv.conf" });
      assertEquals(await c.resolveTxt("only.here.test"), [["configured"]]);
      assertEquals(server.queries, [
        "A only.here.test",
        "A nx.only.here.test",
        "TCP A nx.only.here.test",
        "TCP TXT only.here.test",
      ]);
    } finally {
      useNameServers([]);
      server.close();
    }
    assertEquals(configuredNameServers(), null);
  },
});
