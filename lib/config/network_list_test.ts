import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { matchNetworkList, parseIp, parseNetworkList } from "./network_list.ts";

const list = (text: string) => parseNetworkList("mynetworks", text.split(/[\s,]+/));
const match = (text: string, addr: string, name = "unknown") =>
  matchNetworkList(list(text), { addr, name });

Deno.test("network lists", async (t) => {
  await t.step("addresses and blocks, IPv4-mapped IPv6 clients as IPv4", () => {
    const nets = "127.0.0.0/8 [::1]/128 10.1.2.3 [2001:db8::]/32";
    assert(match(nets, "127.5.6.7"));
    assert(match(nets, "::1"));
    assert(match(nets, "::ffff:127.0.0.1"));
    assert(match(nets, "10.1.2.3"));
    assert(match(nets, "2001:db8:1::5"));
    assert(!match(nets, "10.1.2.4"));
    assert(!match(nets, "128.0.0.1"));
    assert(!match(nets, "::2"));
  });
  await t.step("! negates and the first match wins", () => {
    assertEquals(match("!127.0.0.2, 127.0.0.0/8", "127.0.0.2"), false);
    assertEquals(match("!127.0.0.2, 127.0.0.0/8", "127.0.0.3"), true);
    assertEquals(match("127.0.0.0/8, !127.0.0.2", "127.0.0.2"), true);
    assertEquals(match("!!127.0.0.2", "127.0.0.2"), true);
  });
  await t.step("host names match the verified client name and its parents", () => {
    assertEquals(match("example.com", "192.0.2.1", "mx.example.com"), true);
    assertEquals(match("example.com", "192.0.2.1", "example.com"), true);
    // Parent style (Postfix's default for mynetworks): ".domain" matches nothing.
    assertEquals(match(".example.com", "192.0.2.1", "example.com"), false);
    assertEquals(match(".example.com", "192.0.2.1", "a.example.com"), false);
    assertEquals(match("!localhost 127.0.0.0/8", "127.0.0.1", "localhost"), false);
    assertEquals(match("example.com", "192.0.2.1", "notexample.com"), false);
  });
  await t.step("bad items are reported in Postfix's words, and matching them fails", () => {
    const l = list("127.0.0.1/32 127.0.0.5/0 127.0.0.1/33 1.2.3/24 [fd00::1]/64");
    assertEquals(l.errors, [
      'mynetworks: non-null host address bits in "127.0.0.5/0", perhaps you should use "0.0.0.0/0" instead',
      'mynetworks: bad mask length in "127.0.0.1/33"',
      'mynetworks: bad network value in "1.2.3/24"',
      'mynetworks: non-null host address bits in "[fd00::1]/64", perhaps you should use "[fd00::]/64" instead',
    ]);
    assertEquals(matchNetworkList(l, { addr: "127.0.0.1" }), true); // matched before the bad item
    assertEquals(matchNetworkList(l, { addr: "127.0.0.2" }), "error");
  });
  await t.step("tables, files and unbracketed IPv6 are not supported", () => {
    const l = list("hash:/etc/postfix/nets /etc/postfix/nets ::1/128 !/x");
    assertEquals(l.errors.length, 4);
    assertEquals(matchNetworkList(l, { addr: "127.0.0.1" }), "error");
  });
  await t.step("clients in turn against several lists (the last address parsed is kept)", () => {
    const nets = list("10.0.0.0/8 [2001:db8::]/32");
    const empty = parseNetworkList("smtpd_authorized_xclient_hosts", []);
    for (const [addr, want] of [["10.1.2.3", true], ["192.0.2.1", false], ["10.1.2.3", true]]) {
      assertEquals(matchNetworkList(empty, { addr: addr as string }), false);
      assertEquals(matchNetworkList(nets, { addr: addr as string }), want);
    }
    assertEquals(matchNetworkList(nets, { addr: "::ffff:10.9.9.9" }), true); // IPv4-mapped
    assertEquals(matchNetworkList(nets, { addr: "2001:db8::5" }), true);
    assertEquals(matchNetworkList(nets, { addr: "not-an-address" }), false);
    assertEquals(matchNetworkList(nets, { addr: "10.1.2.3" }), true);
  });
  await t.step("parses IPv6 forms", () => {
    assertEquals(parseIp("2001:db8::1")?.[15], 1);
    assertEquals(parseIp("1:2:3:4:5:6:7:8")?.[15], 8);
    assertEquals(parseIp("[IPv6:::1]")?.[15], 1);
    assertEquals(parseIp("1::2::3"), null);
    assertEquals(parseIp("300.1.1.1"), null);
  });
});
