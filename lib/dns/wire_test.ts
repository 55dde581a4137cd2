/**
 * Unit tests of the DNS message codec: queries as RFC 1035 lays them out,
 * answers with compression, and hostile packets (truncation at every
 * byte, pointer loops, forward pointers, over-long names, lying counts
 * and lengths) that must throw DnsFormatError, never loop or crash.
 */
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { answer } from "../../tests/helpers/dns_server.ts";
import {
  decodeMessage,
  decodeName,
  DnsFormatError,
  EDNS_UDP_SIZE,
  encodeName,
  encodeQuery,
  followCnames,
} from "./wire.ts";

const bytes = (...parts: (number | string)[]) => {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else for (const c of new TextEncoder().encode(p)) out.push(c);
  }
  return new Uint8Array(out);
};

/** A response header: id 0x1234, QR RD RA, the rcode and the counts. */
const header = (rcode: number, qd: number, an: number) =>
  bytes(0x12, 0x34, 0x81, 0x80 | rcode, 0, qd, 0, an, 0, 0, 0, 0);

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
};

/** Question "example.test" type A (at offset 12). */
const QUESTION = bytes(7, "example", 4, "test", 0, 0, 1, 0, 1);

Deno.test("lib/dns wire codec", async (t) => {
  await t.step("a query: header with RD, one question, labels, type and class", () => {
    const q = encodeQuery(0xbeef, "Mx.Example.TEST.", "MX");
    assertEquals(
      Array.from(q),
      Array.from(cat(
        bytes(0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0),
        bytes(2, "Mx", 7, "Example", 4, "TEST", 0, 0, 15, 0, 1),
      )),
    );
    assertEquals(encodeQuery(1, "4.3.2.1.in-addr.arpa", "PTR").at(-3), 12);
    assertEquals(encodeQuery(1, "x.test", "NS").at(-3), 2);
    assertEquals(encodeQuery(1, "x.test", "TXT").at(-3), 16);
    assertEquals(encodeQuery(1, "x.test", "AAAA").at(-3), 28);
  });

  await t.step("names that cannot be asked are refused before any query", () => {
    for (
      const bad of [
        "a..b",
        ".a",
        `${"x".repeat(64)}.test`,
        `${"abcdefghi.".repeat(26)}test`, // 264 octets
        "sp ace.test",
        "nul\0.test",
        "dot\\.test",
        "bücher.test",
      ]
    ) {
      assertThrows(() => encodeName(bad), DnsFormatError);
    }
    assertEquals(encodeName("."), new Uint8Array([0]));
    assertEquals(encodeName(`${"x".repeat(63)}.test`).length, 63 + 1 + 4 + 1 + 1);
  });

  await t.step("the test server's answers decode: A, AAAA, MX (null MX too), TXT, PTR", () => {
    const zone = {
      names: {
        "h.test": {
          A: ["192.0.2.1", "192.0.2.2"],
          AAAA: ["2001:db8::1", "2001:db8:0:1:0:0:0:0"],
          MX: [[10, "mx.h.test"], [0, "."]] as [number, string][],
          TXT: ["v=spf1 -all", "x".repeat(300)],
          PTR: ["ptr.h.test"],
        },
      },
    };
    const ask = (type: "A" | "AAAA" | "MX" | "TXT" | "PTR") =>
      decodeMessage(answer(zone, encodeQuery(7, "h.test", type))!);
    const a = ask("A");
    assertEquals([a.id, a.response, a.rcode, a.truncated], [7, true, 0, false]);
    assertEquals(a.question, { name: "h.test", type: 1, class: 1 });
    assertEquals(a.answers.map((r) => r.data), ["192.0.2.1", "192.0.2.2"]);
    assertEquals(a.answers[0].ttl, 60);
    assertEquals(ask("AAAA").answers.map((r) => r.data), ["2001:db8::1", "2001:db8:0:1::"]);
    assertEquals(ask("MX").answers.map((r) => r.data), [
      { preference: 10, exchange: "mx.h.test" },
      { preference: 0, exchange: "" },
    ]);
    assertEquals(ask("TXT").answers.map((r) => r.data), [
      ["v=spf1 -all"],
      ["x".repeat(255), "x".repeat(45)],
    ]);
    assertEquals(ask("PTR").answers.map((r) => r.data), ["ptr.h.test"]);
    assertEquals(ask("PTR").answers[0].name, "h.test");
  });

  await t.step("the rcode: NXDOMAIN, SERVFAIL, REFUSED, NOERROR without records", () => {
    const zone = {
      names: { "nodata.test": { TXT: ["x"] } },
      servfail: ["sf.test"],
      refused: ["rf.test"],
    };
    const rc = (name: string) => decodeMessage(answer(zone, encodeQuery(1, name, "A"))!);
    assertEquals(rc("nx.test").rcode, 3);
    assertEquals(rc("a.sf.test").rcode, 2);
    assertEquals(rc("rf.test").rcode, 5);
    const nodata = rc("nodata.test");
    assertEquals([nodata.rcode, nodata.answers.length], [0, 0]);
  });

  await t.step("compression: a name that ends in a pointer to an earlier one", () => {
    // CNAME example.test -> www.<ptr 12>, then A www.<ptr 12>
    const msg = cat(
      header(0, 1, 2),
      QUESTION,
      bytes(0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 9, 0, 6, 3, "www", 0xc0, 12),
      bytes(3, "www", 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 192, 0, 2, 7),
    );
    const m = decodeMessage(msg);
    assertEquals(m.answers.map((r) => [r.name, r.type, r.data]), [
      ["example.test", "CNAME", "www.example.test"],
      ["www.example.test", "A", "192.0.2.7"],
    ]);
    // A chain of pointers, each further back: fine.
    const chained = cat(header(0, 1, 0), QUESTION, bytes(3, "abc", 0xc0, 12), bytes(0xc0, 30));
    assertEquals(decodeName(chained, 36), { name: "abc.example.test", end: 38 });
  });

  await t.step("label bytes that are no host name characters are escaped, never passed on", () => {
    const msg = cat(
      header(0, 0, 1),
      bytes(4, "a.b", 0x0a, 0, 0, 12, 0, 1, 0, 0, 0, 0, 0, 5, 3, "x\\y", 0),
    );
    const m = decodeMessage(msg);
    assertEquals(m.answers[0].name, "a\\046b\\010");
    assertEquals(m.answers[0].data, "x\\092y");
  });

  await t.step("hostile: pointer loops and forward pointers throw", () => {
    // A name that points to itself.
    const self = cat(header(0, 1, 0), bytes(0xc0, 12, 0, 1, 0, 1));
    assertThrows(() => decodeMessage(self), DnsFormatError);
    // Two names that point at each other: a label, then a pointer forward.
    const pair = cat(header(0, 0, 0), bytes(1, "a", 0xc0, 16, 1, "b", 0xc0, 12));
    assertThrows(() => decodeName(pair, 12), DnsFormatError);
    assertThrows(() => decodeName(pair, 16), DnsFormatError);
    // A pointer into the middle of its own name.
    const inner = cat(header(0, 0, 0), bytes(1, "a", 1, "b", 0xc0, 14));
    assertThrows(() => decodeName(inner, 12), DnsFormatError);
    // Pointers beyond the message, reserved label types.
    assertThrows(() => decodeName(cat(header(0, 0, 0), bytes(0xff, 0xff)), 12), DnsFormatError);
    assertThrows(() => decodeName(cat(header(0, 0, 0), bytes(0x40, 0)), 12), DnsFormatError);
    assertThrows(() => decodeName(cat(header(0, 0, 0), bytes(0x80, 0)), 12), DnsFormatError);
  });

  await t.step("hostile: a name over 255 octets through pointers throws", () => {
    // 60-octet labels chained back by pointers: each step adds 61 octets.
    const parts: Uint8Array[] = [header(0, 0, 0), bytes(60, "a".repeat(60), 0)];
    let prev = 12;
    let at = 12 + 62;
    for (let i = 0; i < 5; i++) {
      parts.push(bytes(60, "b".repeat(60), 0xc0 | (prev >> 8), prev & 0xff));
      prev = at;
      at += 63;
    }
    const msg = cat(...parts);
    assertEquals(decodeName(msg, 12 + 62).name.length, 121);
    assertThrows(() => decodeName(msg, prev), DnsFormatError);
  });

  await t.step("hostile: every truncation of a good answer throws, none hangs", () => {
    const good = answer(
      { names: { "h.test": { MX: [[10, "mx.h.test"]], TXT: ["hello"] } } },
      encodeQuery(9, "h.test", "MX"),
    )!;
    decodeMessage(good);
    for (let n = 0; n < good.length; n++) {
      assertThrows(() => decodeMessage(good.subarray(0, n)), DnsFormatError);
    }
  });

  await t.step("hostile: counts and lengths that lie", () => {
    // 65535 answers announced, none there.
    const many = cat(bytes(0, 1, 0x81, 0x80, 0, 1, 0xff, 0xff, 0, 0, 0, 0), QUESTION);
    assertThrows(() => decodeMessage(many), DnsFormatError);
    // rdlength past the end; A record of 5 bytes; AAAA of 4.
    const rr = (type: number, len: number, data: number[]) =>
      cat(header(0, 1, 1), QUESTION, bytes(0xc0, 12, 0, type, 0, 1, 0, 0, 0, 1, 0, len, ...data));
    assertThrows(() => decodeMessage(rr(1, 9, [1, 2, 3, 4])), DnsFormatError);
    assertThrows(() => decodeMessage(rr(1, 5, [1, 2, 3, 4, 5])), DnsFormatError);
    assertThrows(() => decodeMessage(rr(28, 4, [1, 2, 3, 4])), DnsFormatError);
    // MX shorter than a preference and a root name; MX whose name runs past its rdata.
    assertThrows(() => decodeMessage(rr(15, 2, [0, 1])), DnsFormatError);
    assertThrows(() => decodeMessage(rr(15, 4, [0, 1, 3, 0x61, 0x62, 0x63, 0])), DnsFormatError);
    // TXT whose string length runs past its rdata.
    assertThrows(() => decodeMessage(rr(16, 3, [5, 0x61, 0x62])), DnsFormatError);
    // PTR with junk after the name.
    assertThrows(() => decodeMessage(rr(12, 4, [1, 0x61, 0, 0])), DnsFormatError);
    // An unknown type is skipped by its length, a non-IN class too.
    const odd = rr(99, 2, [1, 2]);
    assertEquals(decodeMessage(odd).answers, [{
      name: "example.test",
      type: 99,
      ttl: 1,
      data: null,
    }]);
    const chaos = cat(
      header(0, 1, 1),
      QUESTION,
      bytes(0xc0, 12, 0, 1, 0, 3, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4),
    );
    assertEquals(decodeMessage(chaos).answers, []);
  });

  await t.step("hostile: random bytes only ever throw DnsFormatError", () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const base = answer(
      { names: { "h.test": { MX: [[10, "mx.h.test"], [20, "mx2.h.test"]] } } },
      encodeQuery(9, "h.test", "MX"),
    )!;
    let decoded = 0;
    for (let i = 0; i < 20_000; i++) {
      const m = base.slice();
      for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) {
        m[Math.floor(rand() * m.length)] = Math.floor(rand() * 256);
      }
      try {
        decodeMessage(m);
        decoded++;
      } catch (e) {
        assert(e instanceof DnsFormatError, String(e));
      }
    }
    assert(decoded > 0 && decoded < 20_000);
  });
});

Deno.test("lib/dns wire codec: DNSSEC bits and TLSA", async (t) => {
  /** Question "_25._tcp.mx.test" type TLSA (at offset 12). */
  const TLSA_Q = bytes(3, "_25", 4, "_tcp", 2, "mx", 4, "test", 0, 0, 52, 0, 1);
  const tlsa = (len: number, rdata: number[]) =>
    cat(header(0, 1, 1), TLSA_Q, bytes(0xc0, 12, 0, 52, 0, 1, 0, 0, 0, 60, 0, len, ...rdata));

  await t.step("the DO option: an OPT record after the question, plain queries unchanged", () => {
    const plain = encodeQuery(5, "mx.test", "A");
    const q = encodeQuery(5, "mx.test", "A", { dnssecOk: true });
    assertEquals(Array.from(q.subarray(0, 10)), Array.from(plain.subarray(0, 10)));
    assertEquals([q[10], q[11]], [0, 1]); // ARCOUNT
    assertEquals(Array.from(q.subarray(12, plain.length)), Array.from(plain.subarray(12)));
    assertEquals(
      Array.from(q.subarray(plain.length)),
      [0, 0, 41, EDNS_UDP_SIZE >> 8, EDNS_UDP_SIZE & 0xff, 0, 0, 0x80, 0, 0, 0],
    );
    assertEquals(encodeQuery(5, "mx.test", "A", { dnssecOk: false }), plain);
    assertEquals(encodeQuery(1, "_25._tcp.mx.test", "TLSA").at(-3), 52);
    // The decoder reads a query with an OPT record (the additional section is skipped).
    assertEquals(decodeMessage(q).question, { name: "mx.test", type: 1, class: 1 });
  });

  await t.step("the AD bit, and TC and the rcode beside it", () => {
    const flags = (b2: number, b3: number) => {
      const m = decodeMessage(cat(bytes(0, 1, b2, b3, 0, 1, 0, 0, 0, 0, 0, 0), QUESTION));
      return [m.authenticData, m.truncated, m.rcode];
    };
    assertEquals(flags(0x81, 0xa0), [true, false, 0]);
    assertEquals(flags(0x81, 0x80), [false, false, 0]);
    assertEquals(flags(0x83, 0xa3), [true, true, 3]);
    assertEquals(flags(0x81, 0xb2), [true, false, 2]); // CD set too: AD is read alone
  });

  await t.step("TLSA records decode; zero-length association data is kept for the caller", () => {
    const digest = Array.from({ length: 32 }, (_, i) => i);
    const m = decodeMessage(tlsa(35, [3, 1, 1, ...digest]));
    assertEquals(m.answers, [{
      name: "_25._tcp.mx.test",
      type: "TLSA",
      ttl: 60,
      data: { usage: 3, selector: 1, matchingType: 1, data: new Uint8Array(digest) },
    }]);
    const empty = decodeMessage(tlsa(3, [2, 0, 0])).answers[0];
    assertEquals(empty.data, { usage: 2, selector: 0, matchingType: 0, data: new Uint8Array() });
    // The data is a copy: the message buffer can be reused.
    const msg = tlsa(4, [3, 0, 0, 9]);
    const rec = decodeMessage(msg).answers[0].data as { data: Uint8Array };
    msg.fill(0);
    assertEquals(rec.data, new Uint8Array([9]));
  });

  await t.step("hostile TLSA: short or overrunning rdata throws", () => {
    for (const [len, rdata] of [[0, []], [2, [3, 1]], [40, [3, 1, 1, 0]]] as [number, number[]][]) {
      assertThrows(() => decodeMessage(tlsa(len, rdata)), DnsFormatError);
    }
    const good = tlsa(35, [3, 1, 1, ...new Array(32).fill(7)]);
    for (let n = 0; n < good.length; n++) {
      assertThrows(() => decodeMessage(good.subarray(0, n)), DnsFormatError);
    }
  });

  await t.step("followCnames: the chain from the question, its records and its last name", () => {
    const rr = (name: string, type: "A" | "CNAME" | "TLSA", data: unknown) =>
      ({ name, type, ttl: 1, data }) as Parameters<typeof followCnames>[0][number];
    const answers = [
      rr("b.test", "CNAME", "c.test"),
      rr("A.test", "CNAME", "b.test"),
      rr("c.test", "A", "192.0.2.1"),
      rr("a.test", "A", "192.0.2.9"), // beside a CNAME: not an answer
      rr("other.test", "A", "192.0.2.2"),
    ];
    const got = followCnames(answers, "a.TEST.", "A");
    assertEquals([got.name, got.records.map((r) => r.data)], ["c.test", ["192.0.2.1"]]);
    assertEquals(followCnames(answers, "other.test", "A").name, "other.test");
    assertEquals(followCnames(answers, "none.test", "A"), { name: "none.test", records: [] });
    const loop = [rr("x.test", "CNAME", "y.test"), rr("y.test", "CNAME", "x.test")];
    assertEquals(followCnames(loop, "x.test", "A"), { name: "y.test", records: [] });
  });
});
