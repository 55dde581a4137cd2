/**
 * DataDecoder: every terminator edge case, fed whole, byte by byte and in
 * random splits; DotStuffer -> DataDecoder round trip on any canonical
 * content.
 */
import fc from "fast-check";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { DotStuffer } from "./client_codec.ts";
import { DataDecoder } from "./data.ts";
import { chunksAt, concatBytes, latin1, unlatin1 } from "./_test_util.ts";

interface Decoded {
  out: string;
  done: boolean;
  rest: string | null;
  bareLf: number;
  bytesOut: number;
}

function decode(chunks: Uint8Array[], bareLfEndsData = false): Decoded {
  const d = new DataDecoder({ bareLfEndsData });
  const out: Uint8Array[] = [];
  const rest: Uint8Array[] = [];
  let done = false;
  for (const c of chunks) {
    const r = d.push(c);
    out.push(...r.out);
    if (r.done) {
      assert(r.rest !== null);
      rest.push(r.rest);
      done = true;
    } else {
      assertEquals(r.rest, null);
    }
  }
  return {
    out: unlatin1(concatBytes(out)),
    done,
    rest: done ? unlatin1(concatBytes(rest)) : null,
    bareLf: d.bareLfCount,
    bytesOut: d.bytesOut,
  };
}

/** [name, raw input, decoded content, rest after terminator or null if not done, bare LF count] */
const CASES: [string, string, string, string | null, number][] = [
  ["empty message", ".\r\n", "", "", 0],
  ["one line", "a\r\n.\r\n", "a\r\n", "", 0],
  ["empty line then end", "\r\n.\r\n", "\r\n", "", 0],
  ["\\n.\\r\\n does not end DATA", "a\n.\r\n", "a\r\n\r\n", null, 1],
  ["\\r\\n.\\n does not end DATA", "a\r\n.\n", "a\r\n\r\n", null, 1],
  ["\\n.\\n does not end DATA", "a\n.\n", "a\r\n\r\n", null, 2],
  ["first line .\\n does not end DATA", ".\n", "\r\n", null, 1],
  ["first line bare LF then .\\r\\n", "\n.\r\n", "\r\n\r\n", null, 1],
  [
    "ends after a bare-LF line is followed by a CRLF line",
    "a\n.\nb\r\n.\r\n",
    "a\r\n\r\nb\r\n",
    "",
    2,
  ],
  ["bare CR before . is data", "a\r.\r\n", "a\r.\r\n", null, 0],
  ["bare CR in line kept", "a\rb\r\n.\r\n", "a\rb\r\n", "", 0],
  ["CR CR LF", "a\r\r\n.\r\n", "a\r\r\n", "", 0],
  ["dot unstuffing", "..\r\n..x\r\n.y\r\n.\r\n", ".\r\n.x\r\ny\r\n", "", 0],
  ["dot then CR then non-LF", ".\r.\r\n", "\r.\r\n", null, 0],
  ["dot CR CR LF", ".\r\r\n.\r\n", "\r\r\n", "", 0],
  ["dot space", "a\r\n. \r\n", "a\r\n \r\n", null, 0],
  ["dot in the middle of a line", "a.b\r\nc.\r\n.\r\n", "a.b\r\nc.\r\n", "", 0],
  ["pipelined rest", "a\r\n.\r\nMAIL FROM:<x>\r\nRCPT", "a\r\n", "MAIL FROM:<x>\r\nRCPT", 0],
  ["terminator twice: second is rest", ".\r\n.\r\n", "", ".\r\n", 0],
  ["bare LF lines normalized", "a\nb\nc\r\n.\r\n", "a\r\nb\r\nc\r\n", "", 2],
  ["unterminated last line", "a\r\nbc", "a\r\nbc", null, 0],
  ["8-bit bytes pass", "\xff\x80.\xfe\r\n.\r\n", "\xff\x80.\xfe\r\n", "", 0],
];

Deno.test("DataDecoder edge cases", async (t) => {
  for (const [name, input, out, rest, bareLf] of CASES) {
    const raw = latin1(input);
    const expected: Decoded = { out, done: rest !== null, rest, bareLf, bytesOut: out.length };
    await t.step(`${name}: whole`, () => assertEquals(decode([raw]), expected));
    await t.step(`${name}: byte by byte`, () => {
      assertEquals(decode([...raw].map((b) => new Uint8Array([b]))), expected);
    });
    await t.step(`${name}: every two-way split`, () => {
      for (let k = 0; k <= raw.length; k++) assertEquals(decode(chunksAt(raw, [k])), expected);
    });
  }
});

/** smtpd_forbid_bare_newline = no: [name, raw input, decoded content, rest or null, bare LF count] */
const LENIENT: [string, string, string, string | null, number][] = [
  ["\\n.\\n ends DATA", "a\n.\nMAIL", "a\r\n", "MAIL", 2],
  ["\\n.\\r\\n ends DATA", "a\n.\r\nMAIL", "a\r\n", "MAIL", 1],
  ["\\r\\n.\\n ends DATA", "a\r\n.\nMAIL", "a\r\n", "MAIL", 1],
  ["first line .\\n ends DATA", ".\n", "", "", 1],
  ["CRLF.CRLF still ends DATA", "a\r\n.\r\n", "a\r\n", "", 0],
  ["bare CR is still data", "a\r.\r\n", "a\r.\r\n", null, 0],
  ["CR CR LF . CR CR LF does not end DATA", "a\r\r\n.\r\r\nX", "a\r\r\n\r\r\nX", null, 0],
];

Deno.test("DataDecoder with bareLfEndsData (smtpd_forbid_bare_newline = no)", async (t) => {
  for (const [name, input, out, rest, bareLf] of LENIENT) {
    const raw = latin1(input);
    const expected: Decoded = { out, done: rest !== null, rest, bareLf, bytesOut: out.length };
    await t.step(`${name}: whole`, () => assertEquals(decode([raw], true), expected));
    await t.step(`${name}: every two-way split`, () => {
      for (let k = 0; k <= raw.length; k++) {
        assertEquals(decode(chunksAt(raw, [k]), true), expected);
      }
    });
  }
});

Deno.test("DataDecoder behaviour", async (t) => {
  await t.step("push after done returns the chunk as rest", () => {
    const d = new DataDecoder();
    assertEquals(d.push(latin1(".\r\n")).done, true);
    const r = d.push(latin1("QUIT\r\n"));
    assertEquals([r.out, r.done, unlatin1(r.rest!)], [[], true, "QUIT\r\n"]);
  });
  await t.step("clean CRLF content is passed through as one view, no copy", () => {
    const raw = latin1("Subject: x\r\n\r\nhello\r\n");
    const r = new DataDecoder().push(raw);
    assertEquals(r.out.length, 1);
    assertEquals(r.out[0].buffer, raw.buffer);
  });
  await t.step("many pieces are coalesced", () => {
    const r = new DataDecoder().push(latin1("a\nb\nc\nd\ne\nf\n"));
    assertEquals(r.out.length, 1);
    assertEquals(unlatin1(r.out[0]), "a\r\nb\r\nc\r\nd\r\ne\r\nf\r\n");
  });
});

/** Bytes biased toward the interesting ones. */
const wireByte = fc.oneof(
  fc.constantFrom(13, 10, 46),
  fc.constantFrom(13, 10, 46, 97),
  fc.integer({ min: 0, max: 255 }),
);
const wireBytes = fc.array(wireByte, { maxLength: 200 }).map((a) => new Uint8Array(a));
const cuts = fc.array(fc.nat({ max: 200 }), { maxLength: 12 });

Deno.test("DataDecoder properties", async (t) => {
  await t.step("random chunk splits give the same result as one chunk", () => {
    fc.assert(
      fc.property(wireBytes, cuts, (raw, at) => {
        assertEquals(decode(chunksAt(raw, at)), decode([raw]));
      }),
      { numRuns: 2000 },
    );
  });
  await t.step("output never contains a bare LF and ends DATA only on CRLF.CRLF", () => {
    fc.assert(
      fc.property(wireBytes, (raw) => {
        const r = decode([raw]);
        assert(!/(^|[^\r])\n/.test(r.out), JSON.stringify(r.out));
        if (r.done) {
          const consumed = unlatin1(raw).slice(0, raw.length - r.rest!.length);
          assert(consumed === ".\r\n" || consumed.endsWith("\r\n.\r\n"), JSON.stringify(consumed));
        }
      }),
      { numRuns: 2000 },
    );
  });
  await t.step("DotStuffer then DataDecoder round-trips canonical content", () => {
    const line = fc.array(wireByte.filter((b) => b !== 10), { maxLength: 30 })
      .map((a) => unlatin1(new Uint8Array(a)));
    const content = fc.array(line, { maxLength: 12 })
      .map((ls) => latin1(ls.map((l) => l + "\r\n").join("")));
    fc.assert(
      fc.property(content, cuts, cuts, (body, stuffCuts, wireCuts) => {
        const s = new DotStuffer();
        const wire = concatBytes([...chunksAt(body, stuffCuts).map((c) => s.push(c)), s.end()]);
        const pipelined = concatBytes([wire, latin1("QUIT\r\n")]);
        const r = decode(chunksAt(pipelined, wireCuts));
        assertEquals(r, {
          out: unlatin1(body),
          done: true,
          rest: "QUIT\r\n",
          bareLf: 0,
          bytesOut: body.length,
        });
      }),
      { numRuns: 2000 },
    );
  });
});
