import { assertEquals } from "../../tests/helpers/assert.ts";
import { peerName, type PeerResolver, reverseName } from "./peername.ts";

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
