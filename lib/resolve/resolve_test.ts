/**
 * The resolver with inline: tables: address classes and their transports,
 * routing flags, the transport_maps search order, sender-dependent maps,
 * relocated users, and table failures (ResolveError, never "not found").
 * tests/interop/resolve_test.ts compares the same with a real Postfix.
 */
import { assert, assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../config/mod.ts";
import { MatchList } from "./match_list.ts";
import { interfaceAddresses, literalMatches } from "./interfaces.ts";
import {
  deliveryRoute,
  type Resolution,
  RESOLVE_CLASS_FINAL,
  RESOLVE_CLASS_RELAY,
  RESOLVE_FLAG_ERROR,
  RESOLVE_FLAG_ROUTED,
  ResolveError,
  Resolver,
} from "./resolve.ts";

const BASE = `compatibility_level = 3.6
myhostname = mx.example.org
mydomain = example.org
mydestination = $myhostname, localhost
inet_interfaces = 127.0.0.1
recipient_delimiter = +
`;

function resolver(extra = ""): Resolver {
  return Resolver.fromConfig(makeConfig("/x", BASE + extra), { warn: () => {} });
}

const route = (r: Resolution) => `${r.class} ${r.transport}:${r.nexthop} ${r.recipient}`;

Deno.test("resolve: address classes", async (t) => {
  const r = resolver(`virtual_alias_domains = valias.example
virtual_mailbox_domains = vmbox.example
relay_domains = relay.example
relayhost = [gw.example]:2525
`);
  const cases: [string, string][] = [
    ["alice@localhost", "local local:mx.example.org alice@localhost"],
    ["alice", "local local:mx.example.org alice@mx.example.org"],
    ["alice@[127.0.0.1]", "local local:mx.example.org alice@[127.0.0.1]"],
    ["alice@LOCALHOST.", "local local:mx.example.org alice@LOCALHOST"],
    ["a@valias.example", "alias error:5.1.1 User unknown in virtual alias table a@valias.example"],
    ["a@vmbox.example", "virtual virtual:vmbox.example a@vmbox.example"],
    ["a@relay.example", "relay relay:[gw.example]:2525 a@relay.example"],
    ["a@sub.relay.example", "relay relay:[gw.example]:2525 a@sub.relay.example"],
    ["a@remote.example", "default smtp:[gw.example]:2525 a@remote.example"],
    ["a%remote.example@localhost", "default smtp:[gw.example]:2525 a@remote.example"],
    ["remote.example!a@localhost", "default smtp:[gw.example]:2525 a@remote.example"],
    ["a@remote.example@localhost", "default smtp:[gw.example]:2525 a@remote.example"],
    ["@localhost", "local local:mx.example.org MAILER-DAEMON@localhost"],
  ];
  for (const [address, expected] of cases) {
    await t.step(address, async () => assertEquals(route(await r.resolve(address)), expected));
  }
  await t.step("class flags", async () => {
    assert((await r.resolve("a@vmbox.example")).flags & RESOLVE_CLASS_FINAL);
    assert((await r.resolve("a@relay.example")).flags & RESOLVE_CLASS_RELAY);
  });
  await r.close();
});

Deno.test("resolve: routing flags, as reject_unauth_destination reads them", async (t) => {
  const r = resolver("allow_percent_hack = no\nswap_bangpath = no\n");
  const routed = async (a: string) => ((await r.resolve(a)).flags & RESOLVE_FLAG_ROUTED) !== 0;
  await t.step("% and ! stay in a local address and route", async () => {
    assertEquals(await routed("a%remote.example@localhost"), true);
    assertEquals(await routed("remote.example!a@localhost"), true);
    assertEquals(
      route(await r.resolve("a%remote.example@localhost")),
      "local " +
        "local:mx.example.org a%remote.example@localhost",
    );
  });
  await t.step("@ inside quotes routes (resolve_dequoted)", async () => {
    assertEquals(
      route(await r.resolve("a@remote.example@localhost")),
      "default " +
        "smtp:remote.example a@remote.example",
    );
  });
  await t.step("a plain address does not", async () => {
    assertEquals(await routed("alice@localhost"), false);
    assertEquals(await routed("alice@remote.example"), false);
  });
  await r.close();
});

Deno.test("resolve: bad syntax is flagged, not delivered", async () => {
  const r = resolver();
  for (const a of ["a@[300.1.1.1]", "a@123.45.67.89", "a@bad_dom-.example", "-a@localhost"]) {
    assert((await r.resolve(a)).flags & RESOLVE_FLAG_ERROR, a);
  }
  const numeric = resolver("resolve_numeric_domain = yes\n");
  assertEquals(
    route(await numeric.resolve("a@127.0.0.1")),
    "local local:mx.example.org a@[127.0.0.1]",
  );
  const minus = resolver("allow_min_user = yes\n");
  assertEquals((await minus.resolve("-a@localhost")).flags & RESOLVE_FLAG_ERROR, 0);
});

Deno.test("resolve: relay_transport and transport:nexthop parameter values", async () => {
  const r = resolver(`relay_domains = relay.example
relay_transport = lmtp:unix:private/dovecot-lmtp
local_transport = local
default_transport = error:outbound mail is disabled
`);
  assertEquals(
    route(await r.resolve("a@relay.example")),
    "relay lmtp:unix:private/dovecot-lmtp a@relay.example",
  );
  assertEquals(route(await r.resolve("a@localhost")), "local local:localhost a@localhost");
  assertEquals(
    route(await r.resolve("a@remote.example")),
    "default error:outbound mail is disabled a@remote.example",
  );
  await assertRejects(
    () => resolver("default_transport = :x\n").resolve("a@remote.example"),
    ResolveError,
    "default_transport: null transport is not allowed",
  );
});

Deno.test("resolve: transport_maps search order (transport(5))", async (t) => {
  const maps = `transport_maps = inline:{ a+x@t.example=one:, a@t.example=two:,
  t.example=three:[h3], .t.example=four:, noop.example=:, hop.example=:[h6],
  { err.example=error:5.7.1 go away }, errbare.example=error:, *=wild:[w] }`;
  const r = resolver(maps);
  const cases: [string, string][] = [
    ["a+x@t.example", "one:t.example"],
    ["a+y@t.example", "two:t.example"],
    ["a@t.example", "two:t.example"],
    ["b@t.example", "three:[h3]"],
    ["b@sub.t.example", "four:sub.t.example"],
    ["b@deep.sub.t.example", "four:deep.sub.t.example"],
    ["b@noop.example", "smtp:noop.example"],
    ["b@hop.example", "smtp:[h6]"],
    ["b@err.example", "error:5.7.1 go away"],
    ["b@errbare.example", "error:Address is undeliverable"],
    ["b@other.example", "wild:[w]"],
    ["b@localhost", "wild:[w]"],
  ];
  for (const [address, expected] of cases) {
    await t.step(address, async () => {
      const res = await r.resolve(address);
      assertEquals(`${res.transport}:${res.nexthop}`, expected);
    });
  }
  await t.step(
    "parent style when parent_domain_matches_subdomains lists transport_maps",
    async () => {
      const p = resolver(maps + "\nparent_domain_matches_subdomains = transport_maps\n");
      const res = await p.resolve("b@sub.t.example");
      assertEquals(`${res.transport}:${res.nexthop}`, "three:[h3]");
    },
  );
  await t.step("not for the virtual alias class", async () => {
    const v = resolver(maps + "\nvirtual_alias_domains = t.example\n");
    assertEquals((await v.resolve("b@t.example")).transport, "error");
  });
  await t.step("the rule that chose the route names the table entry", async () => {
    assertEquals((await r.resolve("a+x@t.example")).rule, "transport_maps: a+x@t.example one:");
    assertEquals((await r.resolve("b@sub.t.example")).rule, "transport_maps: .t.example four:");
    assertEquals((await r.resolve("b@other.example")).rule, "transport_maps: * wild:[w]");
    const plain = resolver("relayhost = [gw.example]:2525\n");
    assertEquals(
      (await plain.resolve("b@other.example")).rule,
      "default_transport = smtp; relayhost = [gw.example]:2525",
    );
  });
});

Deno.test("resolve: sender-dependent relayhost and default transport", async (t) => {
  const r = resolver(`relayhost = [gw.example]
relay_domains = relay.example
sender_dependent_relayhost_maps = inline:{ vip@s.example=[vip.example], @bulk.example=bulk.example,
  d@s.example=DUNNO, <>=[null.example] }
sender_dependent_default_transport_maps = inline:{ @bulk.example=slow, x@s.example=DUNNO }
`);
  const hop = async (rcpt: string, sender: string) => {
    const res = await r.resolve(rcpt, { sender });
    return `${res.transport}:${res.nexthop}`;
  };
  await t.step("the sender picks the relayhost for remote mail", async () => {
    assertEquals(await hop("a@remote.example", "vip@s.example"), "smtp:[vip.example]");
    assertEquals(await hop("a@remote.example", "vip+tag@s.example"), "smtp:[vip.example]");
    assertEquals(await hop("a@relay.example", "vip@s.example"), "relay:[vip.example]");
    assertEquals(await hop("a@remote.example", "other@s.example"), "smtp:[gw.example]");
    assertEquals(await hop("a@remote.example", ""), "smtp:[null.example]");
  });
  await t.step("DUNNO keeps relayhost and default_transport", async () => {
    assertEquals(await hop("a@remote.example", "d@s.example"), "smtp:[gw.example]");
    assertEquals(await hop("a@remote.example", "x@s.example"), "smtp:[gw.example]");
  });
  await t.step("the default transport only for the default class", async () => {
    assertEquals(await hop("a@remote.example", "z@bulk.example"), "slow:bulk.example");
    assertEquals(await hop("a@relay.example", "z@bulk.example"), "relay:bulk.example");
  });
  await t.step("local mail ignores both", async () => {
    assertEquals(await hop("a@localhost", "vip@s.example"), "local:mx.example.org");
  });
});

Deno.test("resolve: relocated_maps", async () => {
  const r = resolver(
    "relocated_maps = inline:{ moved@localhost=new@else.example, @old.example=info@new.example }\n",
  );
  const res = await r.resolve("moved+ext@localhost");
  assertEquals(`${res.transport}:${res.nexthop}`, "error:5.1.6 User has moved to new@else.example");
  assertEquals(await r.relocated("anyone@old.example"), "info@new.example");
  assertEquals(await r.relocated("stays@localhost"), undefined);
});

Deno.test("resolve: a table that cannot answer is a ResolveError naming it", async (t) => {
  for (
    const name of [
      "transport_maps",
      "relocated_maps",
      "mydestination",
      "relay_domains",
      "sender_dependent_relayhost_maps",
    ]
  ) {
    await t.step(name, async () => {
      const r = resolver(`${name} = fail:down\n`);
      const e = await assertRejects(
        () => r.resolve("a@remote.example", { sender: "s@x.example" }),
        ResolveError,
        name,
      );
      assertEquals(e.parameter, name);
    });
  }
  await t.step("an unknown table type", async () => {
    await assertRejects(
      () => resolver("transport_maps = nosuch:/x\n").resolve("a@b.example"),
      ResolveError,
      'lookup table type "nosuch" is not supported',
    );
  });
  await t.step("tables open once; a failed open is retried", async () => {
    const r = resolver();
    assert(r.open() === r.open());
    await r.open();
  });
});

Deno.test("MatchList: string and domain lists", async (t) => {
  await t.step("string list: exact, negation, first match wins, tables", async () => {
    const l = await MatchList.open(
      "mydestination",
      "!no.example, no.example, a.example, " +
        "inline:{t.example=1}",
      "string",
    );
    assertEquals(
      await Promise.all(["a.example", "A.Example", "no.example", "t.example", "x.a.example"].map(
        (d) => l.match(d),
      )),
      [true, true, false, true, false],
    );
  });
  await t.step("domain list, parent style: name matches subdomains, .name nothing", async () => {
    const l = await MatchList.open("relay_domains", "a.example, .b.example", "parent");
    assertEquals(
      await Promise.all(["a.example", "x.a.example", "b.example", "x.b.example", "xa.example"]
        .map((d) => l.match(d))),
      [true, true, false, false, false],
    );
  });
  await t.step("domain list, dot style: .name matches subdomains", async () => {
    const l = await MatchList.open("relay_domains", "a.example, .b.example", "domain");
    assertEquals(
      await Promise.all(
        ["a.example", "x.a.example", "b.example", "x.b.example"].map((d) => l.match(d)),
      ),
      [true, false, false, true],
    );
  });
  await t.step("domain list tables are asked for parents", async () => {
    const l = await MatchList.open("relay_domains", "inline:{a.example=1}", "parent");
    assertEquals(await l.match("deep.x.a.example"), true);
  });
  await t.step("a list read from a file is refused", async () => {
    await assertRejects(
      () => MatchList.open("relay_domains", "/etc/postfix/relay", "parent"),
      Error,
      "lists read from a file are not supported",
    );
  });
});

Deno.test("interfaces: address literals of inet_interfaces and proxy_interfaces", () => {
  const addrs = interfaceAddresses("inet_interfaces", ["all", "192.0.2.25"], {
    lister: () => ["10.1.2.3", "fe80::1%eth0", "::1"],
  });
  assertEquals(
    ["[10.1.2.3]", "[192.0.2.25]", "[IPv6:::1]", "[::1]", "[10.1.2.4]", "10.1.2.3"].map((l) =>
      literalMatches(l, addrs)
    ),
    [true, true, true, false, false, false],
  );
  const v4 = interfaceAddresses("inet_interfaces", ["loopback-only"], { protocols: ["ipv4"] });
  assertEquals(v4.length, 1);
  const warned: string[] = [];
  interfaceAddresses("inet_interfaces", ["all"], {
    lister: () => null,
    warn: (m) => warned.push(m),
  });
  assertEquals(warned.length, 1);
});

Deno.test("resolve: any address resolves or is flagged, never throws, and comes back user@domain", async () => {
  const fc = (await import("fast-check")).default;
  const r = resolver("relay_domains = relay.example\nvirtual_alias_domains = va.example\n");
  const part = fc.constantFrom(
    "u",
    "a b",
    "",
    ".",
    "@",
    "!",
    "%",
    ":",
    "[127.0.0.1]",
    "[x]",
    "localhost",
    "relay.example",
    "va.example",
    "remote.example",
    "-",
    '"',
  );
  await fc.assert(
    fc.asyncProperty(fc.array(part, { maxLength: 8 }), async (parts) => {
      const res = await r.resolve(parts.join(""));
      assert(res.recipient.includes("@"), res.recipient);
      if (!(res.flags & RESOLVE_FLAG_ERROR)) assert(res.transport !== "", JSON.stringify(res));
    }),
    { numRuns: 2000 },
  );
});

Deno.test("resolve: virtual_transport = lmtp:unix:..., the path's case kept for the agent", async () => {
  const r = resolver(`virtual_mailbox_domains = v.example
virtual_transport = lmtp:unix:private/Dovecot-LMTP
relay_domains = r.example
relay_transport = lmtp:inet:LMTP.Example:24
`);
  const v = await r.resolve("a@v.example");
  assertEquals(route(v), "virtual lmtp:unix:private/Dovecot-LMTP a@v.example");
  assertEquals(deliveryRoute(v), { transport: "lmtp", nexthop: "unix:private/Dovecot-LMTP" });
  const rel = await r.resolve("a@r.example");
  assertEquals(deliveryRoute(rel), { transport: "lmtp", nexthop: "inet:lmtp.example:24" });
});
