/** Unit tests for ip.ts: client addresses (IPv4-mapped as IPv4), macro forms, PTR names, networks. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  clientText,
  dottedIp,
  parseClientIp,
  parseIp4Network,
  parseIp6Network,
  reverseName,
  samePrefix,
} from "./ip.ts";

Deno.test("parseClientIp", async (t) => {
  await t.step("IPv4", () => {
    assertEquals(parseClientIp("192.0.2.3"), { bytes: new Uint8Array([192, 0, 2, 3]), v4: true });
  });
  await t.step("IPv6, any case, zone dropped", () => {
    const ip = parseClientIp("2001:DB8::CB01%eth0")!;
    assertEquals(ip.v4, false);
    assertEquals(clientText(ip), "2001:db8::cb01");
  });
  await t.step("IPv4-mapped IPv6, dotted and hex, is IPv4", () => {
    for (const text of ["::ffff:192.0.2.3", "::FFFF:c000:203", "[::ffff:192.0.2.3]"]) {
      assertEquals(parseClientIp(text), { bytes: new Uint8Array([192, 0, 2, 3]), v4: true }, text);
    }
  });
  await t.step("IPv4-compatible (::a.b.c.d) stays IPv6", () => {
    assertEquals(parseClientIp("::192.0.2.3")!.v4, false);
  });
  await t.step("not addresses", () => {
    for (const text of ["", "example.com", "192.0.2", "1:2:3:4:5:6:7:8:9", "::g"]) {
      assertEquals(parseClientIp(text), null, text);
    }
  });
});

Deno.test("macro forms and reverse names", async (t) => {
  const v4 = parseClientIp("192.0.2.3")!;
  const v6 = parseClientIp("2001:db8::cb01")!;
  await t.step("i: dotted quad, or 32 nibbles", () => {
    assertEquals(dottedIp(v4), "192.0.2.3");
    assertEquals(
      dottedIp(v6),
      "2.0.0.1.0.d.b.8.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.c.b.0.1",
    );
  });
  await t.step("c: readable form", () => {
    assertEquals(clientText(v4), "192.0.2.3");
    assertEquals(clientText(v6), "2001:db8::cb01");
  });
  await t.step("PTR names", () => {
    assertEquals(reverseName(v4), "3.2.0.192.in-addr.arpa");
    assertEquals(
      reverseName(v6),
      "1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
  });
});

Deno.test("networks and prefixes", async (t) => {
  await t.step("ip4 networks: dotted quads without leading zeros", () => {
    assertEquals(parseIp4Network("192.0.2.0"), new Uint8Array([192, 0, 2, 0]));
    for (const bad of ["192.0.2", "192.0.2.01", "256.0.0.1", "1.2.3.4:25", "::1"]) {
      assertEquals(parseIp4Network(bad), null, bad);
    }
  });
  await t.step("ip6 networks: RFC 4291 text, mixed form too, no brackets", () => {
    assertEquals(parseIp6Network("::1.1.1.1")!.length, 16);
    assertEquals(parseIp6Network("2001:DB8::")!.length, 16);
    for (const bad of [":CAFE::BABE", "[::1]", "1.2.3.4", "2001:db8::/32", "2001:db8:::1"]) {
      assertEquals(parseIp6Network(bad), null, bad);
    }
  });
  await t.step("prefix comparison", () => {
    const a = new Uint8Array([192, 0, 2, 3]);
    assertEquals(samePrefix(a, new Uint8Array([192, 0, 2, 200]), 24), true);
    assertEquals(samePrefix(a, new Uint8Array([192, 0, 3, 3]), 24), false);
    assertEquals(samePrefix(a, new Uint8Array([192, 0, 3, 3]), 23), true);
    assertEquals(samePrefix(a, new Uint8Array([192, 0, 4, 3]), 22), false);
    assertEquals(samePrefix(a, new Uint8Array([10, 0, 0, 0]), 0), true);
    assertEquals(samePrefix(a, new Uint8Array([192, 0, 2, 2]), 32), false);
    assertEquals(samePrefix(a, parseIp6Network("::192.0.2.3")!, 0), false);
  });
});
