import fc from "fast-check";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import {
  escapeBytes,
  HAPROXY_HEADER_MAX_LEN,
  parseProxyHeader,
  type ProxyParse,
  readProxyHeader,
} from "./haproxy.ts";

const BOTH = { ipv4: true, ipv6: true };
const V4ONLY = { ipv4: true, ipv6: false };
const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

function v2(cmd: number, fam: number, body: number[]): Uint8Array {
  return new Uint8Array([...SIG, 0x20 | cmd, fam, body.length >> 8, body.length & 0xff, ...body]);
}

function reason(p: ProxyParse): string {
  return p.kind === "error" ? p.reason : p.kind;
}

Deno.test("parseProxyHeader v1", async (t) => {
  // Postfix's own test cases (haproxy_srvr.c), with its v2-era error texts.
  const cases: [string, string | [string, string, number, number]][] = [
    ["PROXY TCP6 fc:00:00:00:1:2:3:4 fc:00:00:00:4:3:2:1 123 321", [
      "fc::1:2:3:4",
      "fc::4:3:2:1",
      123,
      321,
    ]],
    ["PROXY TCP6 FC:00:00:00:1:2:3:4 FC:00:00:00:4:3:2:1 123 321", [
      "fc::1:2:3:4",
      "fc::4:3:2:1",
      123,
      321,
    ]],
    ["PROXY TCP6 1.2.3.4 4.3.2.1 123 321", "bad or missing client address"],
    ["PROXY TCP6 fc:00:00:00:1:2:3:4 4.3.2.1 123 321", "bad or missing server address"],
    ["PROXY TCP6 ::ffff:1.2.3.4 ::ffff:4.3.2.1 123 321", ["1.2.3.4", "4.3.2.1", 123, 321]],
    ["PROXY TCP6 ::FFFF:1.2.3.4 ::FFFF:4.3.2.1 123 321", ["1.2.3.4", "4.3.2.1", 123, 321]],
    ["PROXY TCP4 ::ffff:1.2.3.4 ::ffff:4.3.2.1 123 321", "bad or missing client address"],
    ["PROXY TCP4 1.2.3.4 ::ffff:4.3.2.1 123 321", "bad or missing server address"],
    ["PROXY TCP4 1.2.3.4 4.3.2.1 123 321", ["1.2.3.4", "4.3.2.1", 123, 321]],
    ["PROXY TCP4 01.02.03.04 04.03.02.01 123 321", ["1.2.3.4", "4.3.2.1", 123, 321]],
    ["PROXY TCP4 1.2.3.4 4.3.2.1 123456 321", "bad or missing client port"],
    ["PROXY TCP4 1.2.3.4 4.3.2.1 123 654321", "bad or missing server port"],
    ["PROXY TCP4 1.2.3.4 4.3.2.1 0123 321", "bad or missing client port"],
    ["PROXY TCP4 1.2.3.4 4.3.2.1 123 0321", "bad or missing server port"],
    ["PROXY TCP4 1.2.3.4 4.3.2.1 123", "bad or missing server port"],
    ["PROXY TCP4 1.2.3.4 4.3.2.1", "bad or missing client port"],
    ["PROXY TCP4 1.2.3.4", "bad or missing server address"],
    ["PROXY TCP4", "bad or missing client address"],
    ["PROXY BLAH", "bad or missing protocol type"],
    ["PROXY UNKNOWN", "bad or missing protocol type"],
    ["PROXY TCP4 1.2.3.256 4.3.2.1 1 2", "bad or missing client address"],
  ];
  for (const [line, want] of cases) {
    await t.step(line, () => {
      const bytes = enc.encode(line + "\r\n");
      const p = parseProxyHeader(bytes, BOTH);
      if (typeof want === "string") return assertEquals(reason(p), want);
      assertEquals(p, {
        kind: "proxy",
        length: bytes.length,
        endpoints: {
          clientAddr: want[0],
          serverAddr: want[1],
          clientPort: want[2],
          serverPort: want[3],
        },
      });
    });
  }
  await t.step("TCP6 is refused when inet_protocols has no ipv6", () => {
    const p = parseProxyHeader(enc.encode("PROXY TCP6 ::1 ::1 1 2\r\n"), V4ONLY);
    assertEquals(reason(p), "bad or missing protocol type");
  });
  await t.step("IPv4-mapped stays IPv6 without ipv4", () => {
    const p = parseProxyHeader(enc.encode("PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n"), {
      ipv4: false,
      ipv6: true,
    });
    assertEquals(p.kind === "proxy" && p.endpoints.clientAddr, "::ffff:1.2.3.4");
  });
  await t.step("waits for the line end, then stops at the limit", () => {
    assertEquals(reason(parseProxyHeader(enc.encode("PRO"), BOTH)), "more");
    assertEquals(reason(parseProxyHeader(enc.encode("PROXY TCP4 1.2"), BOTH)), "more");
    assertEquals(
      reason(parseProxyHeader(enc.encode("PROXY TCP4 1.2"), BOTH, true)),
      "missing protocol header terminator",
    );
    const long = enc.encode("PROXY " + "x".repeat(HAPROXY_HEADER_MAX_LEN) + "\n");
    assertEquals(reason(parseProxyHeader(long, BOTH)), "missing protocol header terminator");
  });
  await t.step("the length covers the header only", () => {
    const p = parseProxyHeader(enc.encode("PROXY TCP4 1.2.3.4 4.3.2.1 1 2\nEHLO x\r\n"), BOTH);
    assertEquals(p.kind === "proxy" && p.length, 31);
  });
  await t.step("not a proxy header", () => {
    assertEquals(reason(parseProxyHeader(enc.encode("EHLO x\r\n"), BOTH)), "short protocol header");
    assertEquals(
      reason(parseProxyHeader(enc.encode("EHLO client.example\r\n"), BOTH)),
      "unrecognized protocol header",
    );
  });
});

Deno.test("parseProxyHeader v2", async (t) => {
  await t.step("PROXY TCP4", () => {
    const h = v2(1, 0x11, [192, 0, 2, 10, 192, 0, 2, 11, 0x1f, 0x90, 0, 25]);
    assertEquals(parseProxyHeader(h, BOTH), {
      kind: "proxy",
      length: 28,
      endpoints: {
        clientAddr: "192.0.2.10",
        serverAddr: "192.0.2.11",
        clientPort: 8080,
        serverPort: 25,
      },
    });
  });
  await t.step("PROXY TCP6 with TLVs skipped", () => {
    const a = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1];
    const b = [...Array(15).fill(0), 1];
    const h = v2(1, 0x21, [...a, ...b, 0, 1, 0, 2, 0x04, 0, 1, 0x41]);
    assertEquals(parseProxyHeader(h, BOTH), {
      kind: "proxy",
      length: h.length,
      endpoints: { clientAddr: "2001:db8::1", serverAddr: "::1", clientPort: 1, serverPort: 2 },
    });
  });
  await t.step("LOCAL", () => {
    assertEquals(parseProxyHeader(v2(0, 0, []), BOTH), { kind: "local", length: 16 });
  });
  await t.step("errors", () => {
    assertEquals(
      reason(parseProxyHeader(v2(2, 0x11, Array(12).fill(0)), BOTH)),
      "bad command in proxy header",
    );
    assertEquals(
      reason(parseProxyHeader(v2(1, 0x12, Array(12).fill(0)), BOTH)),
      "unsupported network protocol",
    );
    assertEquals(
      reason(parseProxyHeader(v2(1, 0x31, Array(216).fill(0)), BOTH)),
      "unsupported network protocol",
    );
    assertEquals(reason(parseProxyHeader(v2(1, 0x11, [1, 2, 3, 4]), BOTH)), "short address field");
    assertEquals(
      reason(parseProxyHeader(v2(1, 0x21, Array(12).fill(0)), BOTH)),
      "short address field",
    );
    assertEquals(
      reason(parseProxyHeader(v2(1, 0x21, Array(36).fill(0)), V4ONLY)),
      "Postfix IPv6 support is disabled",
    );
    const badVersion = v2(1, 0x11, Array(12).fill(0));
    badVersion[12] = 0x11;
    assertEquals(reason(parseProxyHeader(badVersion, BOTH)), "unrecognized protocol version");
    assertEquals(
      reason(parseProxyHeader(v2(1, 0x11, Array(600).fill(0)), BOTH)),
      "short version 2 protocol header",
    );
  });
  await t.step("waits for a split header", () => {
    const h = v2(1, 0x11, [192, 0, 2, 10, 192, 0, 2, 11, 0x1f, 0x90, 0, 25]);
    for (let i = 1; i < h.length; i++) {
      assertEquals(reason(parseProxyHeader(h.subarray(0, i), BOTH)), "more", `prefix ${i}`);
    }
    assertEquals(
      reason(parseProxyHeader(h.subarray(0, 20), BOTH, true)),
      "short version 2 protocol header",
    );
  });
});

Deno.test("escapeBytes is Postfix's escape()", () => {
  assertEquals(
    escapeBytes(new Uint8Array([0x0d, 0x0a, 0, 0x21, 0x5c, 0xc0])),
    "\\r\\n\\000!\\\\\\300",
  );
});

Deno.test("readProxyHeader", async (t) => {
  const reader = (chunks: (string | Uint8Array)[]) => {
    const q = chunks.map((c) => typeof c === "string" ? enc.encode(c) : c);
    return () => Promise.resolve(q.shift() ?? null);
  };
  const opts = { timeoutMs: 1000, families: BOTH };
  await t.step("split header, rest handed back", async () => {
    const r = await readProxyHeader(
      reader(["PROXY TCP4 1.2.3.4 ", "4.3.2.1 5 25\r", "\nEHLO x\r\n"]),
      opts,
    );
    assert(r.ok);
    assertEquals(r.header.kind === "proxy" && r.header.endpoints.clientAddr, "1.2.3.4");
    assertEquals(new TextDecoder().decode(r.rest), "EHLO x\r\n");
  });
  await t.step("EOF before anything", async () => {
    assertEquals(await readProxyHeader(reader([]), opts), {
      ok: false,
      warning: "haproxy read: EOF",
    });
  });
  await t.step("EOF inside the header", async () => {
    assertEquals(await readProxyHeader(reader(["PROXY TCP4 1.2.3.4"]), opts), {
      ok: false,
      warning: "haproxy read: missing protocol header terminator: PROXY TCP4 1.2.3.4",
    });
  });
  await t.step("bad header logged escaped", async () => {
    assertEquals(await readProxyHeader(reader(["PROXY TCP4 1.2.3.4 4.3.2.1 4567\r\n"]), opts), {
      ok: false,
      warning: "haproxy read: bad or missing server port: PROXY TCP4 1.2.3.4 4.3.2.1 4567\\r\\n",
    });
  });
  await t.step("timeout", async () => {
    const never = () => new Promise<Uint8Array | null>(() => {});
    assertEquals(await readProxyHeader(never, { timeoutMs: 20, families: BOTH }), {
      ok: false,
      warning: "haproxy read: timeout error",
    });
  });
  await t.step("a read error is a clean failure", async () => {
    const broken = () => Promise.reject(new Error("Connection reset by peer"));
    assertEquals(await readProxyHeader(broken, opts), {
      ok: false,
      warning: "haproxy read: Connection reset by peer",
    });
  });
});

Deno.test("parseProxyHeader never throws and never overreads (fast-check)", () => {
  const sig = fc.constant(new Uint8Array(SIG));
  const v1Text = fc.stringMatching(
    /^PROXY( (TCP4|TCP6|UNKNOWN|[ -~]{0,8})( [0-9a-fA-F:.]{0,40}){0,5})?\r?\n?/,
  )
    .map((s) => enc.encode(s));
  const v2Like = fc.tuple(sig, fc.uint8Array({ maxLength: 4 }), fc.uint8Array({ maxLength: 700 }))
    .map(([s, h, b]) => {
      const out = new Uint8Array(s.length + h.length + b.length);
      out.set(s);
      out.set(h, s.length);
      out.set(b, s.length + h.length);
      return out;
    });
  const input = fc.oneof(fc.uint8Array({ maxLength: 800 }), v1Text, v2Like);
  fc.assert(
    fc.property(input, fc.boolean(), fc.boolean(), fc.boolean(), (buf, final, ipv4, ipv6) => {
      const p = parseProxyHeader(buf, { ipv4, ipv6 }, final);
      if (final) assert(p.kind !== "more");
      if (p.kind === "proxy" || p.kind === "local") {
        assert(p.length > 0 && p.length <= buf.length && p.length <= HAPROXY_HEADER_MAX_LEN);
      }
      if (p.kind === "proxy") {
        const { clientPort, serverPort } = p.endpoints;
        assert(clientPort >= 0 && clientPort <= 65535 && serverPort >= 0 && serverPort <= 65535);
        assert(/^[0-9a-f:.]+$/.test(p.endpoints.clientAddr));
      }
      // Splitting the input never changes the verdict once the whole is seen.
      const whole = parseProxyHeader(buf, { ipv4, ipv6 }, true);
      if (p.kind !== "more") assertEquals(p, whole);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("parseProxyHeader reads back any valid header, whole or cut short (fast-check)", () => {
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255));
  const port = fc.nat(65535);
  fc.assert(
    fc.property(v4, v4, port, port, fc.boolean(), fc.nat(40), (c, s, cp, sp, binary, cut) => {
      const header = binary
        ? v2(1, 0x11, [...c, ...s, cp >> 8, cp & 0xff, sp >> 8, sp & 0xff])
        : enc.encode(`PROXY TCP4 ${c.join(".")} ${s.join(".")} ${cp} ${sp}\r\n`);
      const want: ProxyParse = {
        kind: "proxy",
        length: header.length,
        endpoints: {
          clientAddr: c.join("."),
          serverAddr: s.join("."),
          clientPort: cp,
          serverPort: sp,
        },
      };
      const withRest = new Uint8Array([...header, ...enc.encode("EHLO x\r\n")]);
      assertEquals(parseProxyHeader(withRest, BOTH), want);
      const short = header.subarray(0, Math.min(cut, header.length - 1));
      assertEquals(parseProxyHeader(short, BOTH).kind, "more");
    }),
    { numRuns: 1000 },
  );
});
