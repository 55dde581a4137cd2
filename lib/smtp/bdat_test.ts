/**
 * BDAT argument parsing and chunk decoding: bare LF normalized and
 * counted, CR kept, a last line without line end completed at LAST, the
 * same output for any split of the chunk.
 */
import fc from "fast-check";
import { assertEquals } from "../../tests/helpers/assert.ts";
import { BdatDecoder, parseBdatArgs } from "./bdat.ts";
import { chunksAt, concatBytes, latin1, unlatin1 } from "./_test_util.ts";

Deno.test("parseBdatArgs", async (t) => {
  await t.step("valid", () => {
    assertEquals(parseBdatArgs("0 LAST"), { size: 0, last: true });
    assertEquals(parseBdatArgs("007 last"), { size: 7, last: true });
    assertEquals(parseBdatArgs("123"), { size: 123, last: false });
    assertEquals(parseBdatArgs("5  \tLaSt"), { size: 5, last: true });
    assertEquals(parseBdatArgs("9223372036854775807")?.size, Number.MAX_SAFE_INTEGER);
  });
  await t.step("malformed, as Postfix's 521 Syntax", () => {
    for (const bad of ["", "x", "-1", "1.5", "3 FOO", "3 LAST x", "+3", "9223372036854775808"]) {
      assertEquals(parseBdatArgs(bad), null, bad);
    }
  });
});

function decode(chunks: Uint8Array[], last = true) {
  const d = new BdatDecoder();
  const out: Uint8Array[] = [];
  for (const c of chunks) out.push(...d.push(c));
  if (last) out.push(...d.finish());
  return { out: unlatin1(concatBytes(out)), bareLf: d.bareLfCount, bytes: d.bytesOut };
}

Deno.test("BdatDecoder", async (t) => {
  const cases: [string, string, string, number][] = [
    ["CRLF lines pass", "a\r\nb\r\n", "a\r\nb\r\n", 0],
    ["no dot unstuffing, no terminator", "..x\r\n.\r\nMAIL\r\n", "..x\r\n.\r\nMAIL\r\n", 0],
    ["bare LF becomes CRLF and is counted", "a\nb\r\nc\n", "a\r\nb\r\nc\r\n", 2],
    ["bare CR is data", "a\rb\r\n", "a\rb\r\n", 0],
    ["last line completed", "abc", "abc\r\n", 0],
    ["empty", "", "", 0],
    ["8-bit and NUL pass", "\x00\xff\r\n", "\x00\xff\r\n", 0],
  ];
  for (const [name, input, out, bareLf] of cases) {
    await t.step(name, () => {
      const raw = latin1(input);
      for (let k = 0; k <= raw.length; k++) {
        assertEquals(decode(chunksAt(raw, [k])), { out, bareLf, bytes: out.length });
      }
    });
  }
  await t.step("bytesOut before LAST counts a partial line as it is", () => {
    const d = new BdatDecoder();
    d.push(latin1("abc"));
    assertEquals(d.bytesOut, 3);
    d.finish();
    assertEquals(d.bytesOut, 5);
  });
  await t.step("any split gives the same output (property)", () => {
    const bytes = fc.array(fc.constantFrom(10, 13, 46, 97, 0, 255), { maxLength: 100 })
      .map((a) => new Uint8Array(a));
    fc.assert(
      fc.property(bytes, fc.array(fc.nat({ max: 100 }), { maxLength: 8 }), (raw, at) => {
        const whole = decode([raw]);
        assertEquals(decode(chunksAt(raw, at)), whole);
        assertEquals(/(^|[^\r])\n/.test(whole.out), false);
      }),
      { numRuns: 1000 },
    );
  });
});
