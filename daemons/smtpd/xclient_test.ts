import fc from "fast-check";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import {
  authorized,
  forwardedClient,
  parseXclient,
  parseXforward,
  smtpdTokens,
  validMailhostAddr,
  xclientAuth,
  xforwardNamaddr,
  xforwardPreset,
} from "./xclient.ts";
import { etrnReply } from "./etrn.ts";

Deno.test("smtpdTokens splits like Postfix's smtpd_token", () => {
  assertEquals(smtpdTokens("  A=1\tB=2  "), ["A=1", "B=2"]);
  assertEquals(smtpdTokens('HELO=a"b c\\" d"e F=1'), ['HELO=a"b c\\" d"e', "F=1"]);
  assertEquals(smtpdTokens('X="open quote runs to the end'), ['X="open quote runs to the end']);
  assertEquals(smtpdTokens(""), []);
});

Deno.test("parseXclient", async (t) => {
  await t.step("every attribute", () => {
    assertEquals(
      parseXclient(
        "NAME=mx.example ADDR=192.0.2.1 PORT=25 PROTO=esmtp HELO=h.example LOGIN=joe DESTADDR=IPv6:::1 DESTPORT=587 REVERSE_NAME=r.example",
      ),
      {
        ok: true,
        update: {
          name: "mx.example",
          nameTemporary: false,
          addr: "192.0.2.1",
          port: 25,
          protocol: "ESMTP",
          helo: "h.example",
          login: "joe",
          destAddr: "::1",
          destPort: 587,
          reverseName: "r.example",
        },
      },
    );
  });
  await t.step("unavailable values", () => {
    assertEquals(
      parseXclient(
        "NAME=[TEMPUNAVAIL] ADDR=[UNAVAILABLE] PORT=[UNAVAILABLE] HELO=[UNAVAILABLE] LOGIN=[UNAVAILABLE]",
      ),
      {
        ok: true,
        update: {
          name: "unknown",
          nameTemporary: true,
          addr: "unknown",
          port: 0,
          helo: null,
          login: null,
        },
      },
    );
  });
  await t.step("IPv6 needs its tag; the bare address is kept as given", () => {
    assertEquals(parseXclient("ADDR=ipv6:2001:DB8::1"), {
      ok: true,
      update: { addr: "2001:DB8::1" },
    });
    assertEquals(parseXclient("ADDR=2001:db8::1"), {
      ok: false,
      text: "Bad ADDR syntax: 2001:db8::1",
    });
    assertEquals(parseXclient("ADDR=IPv6:1.2.3.4"), {
      ok: false,
      text: "Bad ADDR syntax: IPv6:1.2.3.4",
    });
  });
  await t.step("xtext values are decoded, others kept as sent", () => {
    assertEquals(parseXclient("NAME=a+2Eexample"), {
      ok: true,
      update: { name: "a.example", nameTemporary: false },
    });
    assertEquals(parseXclient("NAME=a+2"), { ok: false, text: "Bad NAME syntax: a+2" });
  });
  await t.step("HELO is censored, control characters become ?", () => {
    assertEquals(parseXclient('HELO=a<b>(c)"d;e@f:g+0D+0A'), {
      ok: true,
      update: { helo: "a?b??c??d?e?f:g??" },
    });
  });
  await t.step("errors in Postfix's words", () => {
    const bad = (arg: string) => {
      const r = parseXclient(arg);
      return r.ok ? "ok" : r.text;
    };
    assertEquals(bad("FOO=1"), "Bad XCLIENT attribute name: FOO");
    assertEquals(bad("NAME"), "Error: attribute=value expected");
    assertEquals(bad("NAME="), "Error: attribute=value expected");
    assertEquals(bad(`NAME=${"a".repeat(256)}`), "Error: attribute value too long");
    assertEquals(bad("PROTO=LMTP"), "Bad PROTO syntax: LMTP");
    assertEquals(bad("PORT=123456"), "Bad PORT syntax: 123456");
    assertEquals(bad("PORT=99999"), "ok"); // Postfix checks digits, not the range
    assertEquals(bad("NAME=-bad.example"), "Bad NAME syntax: -bad.example");
    assertEquals(bad("ADDR=1.2.3.256"), "Bad ADDR syntax: 1.2.3.256");
  });
});

Deno.test("parseXforward", async (t) => {
  await t.step("accumulates over commands", () => {
    const a = parseXforward("NAME=up.example ADDR=192.0.2.1", xforwardPreset());
    assert(a.ok);
    const b = parseXforward("IDENT=Q1 SOURCE=remote HELO=[UNAVAILABLE]", a.attrs);
    assert(b.ok);
    assertEquals(b.attrs.name, "up.example");
    assertEquals(b.attrs.ident, "Q1");
    assertEquals(b.attrs.source, "remote");
    assertEquals(b.attrs.helo, null);
    assertEquals(xforwardNamaddr(b.attrs), "up.example[192.0.2.1]");
    assertEquals(forwardedClient(b.attrs), true);
  });
  await t.step("only an ident: no forwarded client", () => {
    const r = parseXforward("IDENT=Q1", xforwardPreset());
    assert(r.ok);
    assertEquals(forwardedClient(r.attrs), false);
    assertEquals(xforwardNamaddr(r.attrs), "unknown");
  });
  await t.step("a bad attribute leaves earlier ones as they were", () => {
    const a = parseXforward("NAME=up.example", xforwardPreset());
    assert(a.ok);
    const b = parseXforward("ADDR=192.0.2.9 SOURCE=elsewhere", a.attrs);
    assertEquals(b, { ok: false, text: "Bad SOURCE syntax: elsewhere" });
    assertEquals(a.attrs.addr, "unknown");
  });
  await t.step("censoring and checks", () => {
    const text = (arg: string) => {
      const r = parseXforward(arg, xforwardPreset());
      return r.ok ? "ok" : r.text;
    };
    assertEquals(text("NAME=a:b"), "Bad NAME syntax: a:b");
    assertEquals(text("NAME=a@b"), "Bad NAME syntax: a?b");
    assertEquals(text(`PROTO=${"x".repeat(65)}`), `Bad PROTO syntax: ${"x".repeat(65)}`);
    assertEquals(text("ADDR=IPv6:2001:db8::1"), "ok");
    assertEquals(text("FOO=1"), "Bad XFORWARD attribute name: FOO");
    const r = parseXforward("IDENT=a<b>@c HELO=x;y SOURCE=[UNAVAILABLE]", xforwardPreset());
    assert(r.ok);
    assertEquals([r.attrs.ident, r.attrs.helo, r.attrs.source], ["a?b??c", "x?y", "local"]);
  });
});

Deno.test("authorization lists", async (t) => {
  const auth = xclientAuth(
    makeConfig(
      "/tmp",
      "smtpd_authorized_xclient_hosts = 127.0.0.1, [::1], filter.example\n" +
        "smtpd_authorized_xforward_hosts = !192.0.2.1, 192.0.2.0/24\n",
    ),
  );
  await t.step("addresses, IPv6 and names", () => {
    assertEquals(authorized(auth.xclient, { name: "localhost", addr: "127.0.0.1" }), true);
    assertEquals(authorized(auth.xclient, { name: "localhost", addr: "::1" }), true);
    assertEquals(authorized(auth.xclient, { name: "a.filter.example", addr: "192.0.2.5" }), true);
    assertEquals(authorized(auth.xclient, { name: "unknown", addr: "127.0.0.2" }), false);
  });
  await t.step("networks and negation", () => {
    assertEquals(authorized(auth.xforward, { name: "unknown", addr: "192.0.2.1" }), false);
    assertEquals(authorized(auth.xforward, { name: "unknown", addr: "192.0.2.2" }), true);
  });
  await t.step("empty by default: nobody", () => {
    const none = xclientAuth(makeConfig("/tmp", ""));
    assertEquals(authorized(none.xclient, { name: "localhost", addr: "127.0.0.1" }), false);
    assertEquals(authorized(none.xforward, { name: "localhost", addr: "127.0.0.1" }), false);
  });
});

Deno.test("validMailhostAddr", () => {
  assertEquals(validMailhostAddr("192.0.2.1"), "192.0.2.1");
  assertEquals(validMailhostAddr("IPV6:::ffff:1.2.3.4"), "::ffff:1.2.3.4");
  assertEquals(validMailhostAddr("[192.0.2.1]"), null);
  assertEquals(validMailhostAddr("IPv6:[::1]"), null);
});

Deno.test("etrnReply", () => {
  const free = { heloRequired: false, inTransaction: false };
  assertEquals(etrnReply("example.com", free), {
    reply: "459 <example.com>: service unavailable",
    warning: "reject: ETRN example.com...",
  });
  assertEquals(etrnReply("#example.com", free).reply, "459 <example.com>: service unavailable");
  assertEquals(etrnReply("", free).reply, "500 Syntax: ETRN domain");
  assertEquals(etrnReply("a_b!", free).reply, "501 Error: invalid parameter syntax");
  assertEquals(
    etrnReply("x", { heloRequired: true, inTransaction: true }).reply,
    "503 Error: send HELO/EHLO first",
  );
});

Deno.test("XCLIENT/XFORWARD parsing never throws (fast-check)", () => {
  const word = fc.stringMatching(
    /^(NAME|ADDR|PORT|PROTO|HELO|LOGIN|IDENT|SOURCE|[A-Z]{1,3})=[ -~]{0,20}$/,
  );
  const arg = fc.oneof(
    fc.array(word, { maxLength: 6 }).map((w) => w.join(" ")),
    fc.string({ maxLength: 300 }),
  );
  fc.assert(
    fc.property(arg, (a) => {
      const x = parseXclient(a);
      if (x.ok) {
        for (const v of [x.update.name, x.update.helo, x.update.addr]) {
          if (typeof v === "string") assert(!/[\r\n\0]/.test(v));
        }
      }
      const f = parseXforward(a, xforwardPreset());
      if (f.ok) {
        for (const v of [f.attrs.name, f.attrs.helo, f.attrs.ident, f.attrs.protocol]) {
          if (typeof v === "string") assert(!/[ <>()\\";@\r\n\0]/.test(v), v);
        }
      }
      etrnReply(a, { heloRequired: false, inTransaction: false });
    }),
    { numRuns: 2000 },
  );
});
