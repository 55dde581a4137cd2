/**
 * Tests for the header splitter (chunking anywhere, folding, the end of the
 * header at a non-header line, header_size_limit), header formatting, dates
 * and xtext.
 */

import { concat } from "../bytes/mod.ts";
import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import {
  findHeader,
  formatHeader,
  type HeaderField,
  type HeaderSplitResult,
  HeaderSplitter,
  rfc2822Date,
  xtextDecode,
  xtextEncode,
  XtextError,
} from "./mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

interface Split {
  headers: HeaderField[];
  rest: string;
  truncated: boolean;
  /** Chunk index at which push() first returned done, or -1. */
  doneAt: number;
}

/** Feeds `chunks` and collects the headers and everything after them. */
function split(chunks: Uint8Array[], maxBytes = 100_000): Split {
  const s = new HeaderSplitter({ maxBytes });
  const rest: Uint8Array[] = [];
  let headers: HeaderField[] | undefined;
  let truncated = false;
  let doneAt = -1;
  for (const [i, c] of chunks.entries()) {
    const r = s.push(c);
    if (r.done) {
      if (doneAt < 0) {
        doneAt = i;
        headers = r.headers;
        truncated = r.truncated ?? false;
      }
      rest.push(r.rest!);
    }
  }
  if (doneAt < 0) {
    const e = s.end();
    headers = e.headers;
    truncated = e.truncated;
    rest.push(e.rest);
  }
  return { headers: headers!, rest: dec.decode(concat(rest)), truncated, doneAt };
}

function splitText(text: string, maxBytes?: number): Split {
  return split([enc.encode(text)], maxBytes);
}

/** The splitter must be lossless: raw fields plus rest give back the input. */
function assertLossless(input: string, r: Split): void {
  assertEquals(r.headers.map((h) => dec.decode(h.raw)).join("") + r.rest, input);
}

/** Every way of cutting `text` into two chunks, and into single bytes. */
function chunkings(text: string): Uint8Array[][] {
  const bytes = enc.encode(text);
  const out: Uint8Array[][] = [];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.slice(0, i), bytes.slice(i)]);
  out.push([...bytes].map((b) => Uint8Array.of(b)));
  return out;
}

const SAMPLE = "Received: from client.example.org (client.example.org [192.0.2.1])\r\n" +
  "\tby mx.example.com (Postwarden) with ESMTP id 4ABC123;\r\n" +
  "\tMon, 30 Nov 2026 16:28:42 +0000 (UTC)\r\n" +
  "From: Alice <alice@example.org>\r\n" +
  "To: bob@example.com,\r\n    carol@example.com\r\n" +
  "Subject: hello\r\n" +
  "\r\n" +
  "Body line 1\r\nBody: not a header\r\n";

Deno.test("HeaderSplitter", async (t) => {
  await t.step("splits a message in one chunk", () => {
    const r = splitText(SAMPLE);
    assertEquals(r.headers.map((h) => h.name), ["Received", "From", "To", "Subject"]);
    assertEquals(r.rest, "\r\nBody line 1\r\nBody: not a header\r\n");
    assertEquals(r.truncated, false);
    assertEquals(r.doneAt, 0);
    assertLossless(SAMPLE, r);
  });

  await t.step("unfolds values and keeps raw bytes with folding", () => {
    const r = splitText(SAMPLE);
    const received = findHeader(r.headers, "received")!;
    assertEquals(
      received.value,
      "from client.example.org (client.example.org [192.0.2.1])" +
        "\tby mx.example.com (Postwarden) with ESMTP id 4ABC123;" +
        "\tMon, 30 Nov 2026 16:28:42 +0000 (UTC)",
    );
    assert(dec.decode(received.raw).endsWith("(UTC)\r\n"));
    assertEquals(findHeader(r.headers, "TO")!.value, "bob@example.com,    carol@example.com");
    assertEquals(
      dec.decode(findHeader(r.headers, "to")!.raw),
      "To: bob@example.com,\r\n    carol@example.com\r\n",
    );
  });

  await t.step("gives the same result however the input is chunked", () => {
    const whole = splitText(SAMPLE);
    for (const chunks of chunkings(SAMPLE)) {
      const r = split(chunks);
      assertEquals(
        r.headers.map((h) => [h.name, h.value, dec.decode(h.raw)]),
        whole.headers.map((h) => [h.name, h.value, dec.decode(h.raw)]),
      );
      assertEquals(r.rest, whole.rest);
      assertEquals(r.truncated, false);
    }
  });

  await t.step("ends the header at a line that is not a header (Postfix)", () => {
    const input = "Subject: x\r\nX-Ok: 1\r\nThis line is body\r\nX-Later: 2\r\n\r\nmore\r\n";
    for (const chunks of chunkings(input)) {
      const r = split(chunks);
      assertEquals(r.headers.map((h) => h.name), ["Subject", "X-Ok"]);
      assertEquals(r.rest, "This line is body\r\nX-Later: 2\r\n\r\nmore\r\n");
      assertEquals(r.truncated, false);
      assertLossless(input, r);
    }
  });

  await t.step("treats a leading continuation line as body", () => {
    const r = splitText(" indented\r\nSubject: x\r\n\r\n");
    assertEquals(r.headers, []);
    assertEquals(r.rest, " indented\r\nSubject: x\r\n\r\n");
  });

  await t.step("accepts white space between the label and the colon", () => {
    const r = splitText("Subject \t: spaced\r\n\r\n");
    assertEquals(r.headers[0].name, "Subject");
    assertEquals(r.headers[0].value, "spaced");
  });

  await t.step("rejects labels with control, 8-bit or inner white space", () => {
    for (const line of ["Bad Label: x", "Bad\x01: x", "B\xe4d: x", ": empty label"]) {
      const r = splitText(`A: 1\r\n${line}\r\n\r\n`);
      assertEquals(r.headers.map((h) => h.name), ["A"], line);
    }
  });

  await t.step("ends the header early at a partial body line", () => {
    const s = new HeaderSplitter({ maxBytes: 1000 });
    assertEquals(s.push(enc.encode("A: 1\r\nnot a header and no line end yet")).done, true);
  });

  await t.step("waits for the next byte before finishing a field", () => {
    const s = new HeaderSplitter({ maxBytes: 1000 });
    assertEquals(s.push(enc.encode("A: 1\r\n")).done, false);
    assertEquals(s.push(enc.encode(" 2\r\n")).done, false);
    const r = s.push(enc.encode("\r\nbody"));
    assertEquals(r.done, true);
    assertEquals(r.headers!.map((h) => h.value), ["1 2"]);
    assertEquals(dec.decode(r.rest), "\r\nbody");
  });

  await t.step("end() handles a header-only message and a final line without CRLF", () => {
    const r = split([enc.encode("A: 1\r\nB: 2")]);
    assertEquals(r.headers.map((h) => [h.name, h.value]), [["A", "1"], ["B", "2"]]);
    assertEquals(r.rest, "");
    const r2 = split([enc.encode("A: 1\r\n"), enc.encode(" more")]);
    assertEquals(r2.headers.map((h) => h.value), ["1 more"]);
    const empty = new HeaderSplitter({ maxBytes: 10 }).end();
    assertEquals(empty, { headers: [], rest: new Uint8Array(0), truncated: false });
  });

  await t.step("passes later chunks through as body", () => {
    const s = new HeaderSplitter({ maxBytes: 1000 });
    assert(s.push(enc.encode("A: 1\r\n\r\n")).done);
    const r = s.push(enc.encode("X: not a header now\r\n"));
    assertEquals(dec.decode(r.rest), "X: not a header now\r\n");
    assertEquals(s.end().rest.length, 0);
  });

  await t.step("keeps 8-bit bytes exact in raw and decodes values as UTF-8", () => {
    const bytes = concat([
      enc.encode("Subject: "),
      Uint8Array.of(0xc3, 0xa9, 0xff),
      enc.encode("\r\n\r\n"),
    ]);
    const r = split([bytes]);
    assertEquals(r.headers[0].raw, bytes.subarray(0, bytes.length - 2));
    assertEquals(r.headers[0].value, "\u00e9\ufffd");
  });

  await t.step("tolerates bare LF line ends", () => {
    const r = splitText("A: 1\n b\nB: 2\n\nbody\n");
    assertEquals(r.headers.map((h) => h.value), ["1 b", "2"]);
    assertEquals(r.rest, "\nbody\n");
  });
});

Deno.test("HeaderSplitter size limit (header_size_limit, per field as Postfix)", async (t) => {
  const split2 = (text: string, maxBytes: number, lineBytes?: number) => {
    const whole = (() => {
      const s = new HeaderSplitter({ maxBytes, lineBytes });
      const r = s.push(enc.encode(text));
      const e = r.done ? null : s.end();
      return {
        headers: (r.headers ?? e!.headers).map((h) => dec.decode(h.raw)),
        rest: dec.decode(r.rest ?? e!.rest),
        truncated: r.truncated ?? e!.truncated,
      };
    })();
    // Byte by byte gives the same.
    const s = new HeaderSplitter({ maxBytes, lineBytes });
    let r: HeaderSplitResult = { done: false };
    const bytes = enc.encode(text);
    let rest = "";
    for (const b of bytes) {
      r = s.push(Uint8Array.of(b));
      if (r.done) rest += dec.decode(r.rest!);
    }
    const e = r.done ? null : s.end();
    assertEquals({
      headers: (r.headers ?? e!.headers).map((h) => dec.decode(h.raw)),
      rest: r.done ? rest : dec.decode(e!.rest),
      truncated: r.truncated ?? e!.truncated,
    }, whole);
    return whole;
  };

  await t.step("many small fields stay fields, however many", () => {
    const fields = Array.from({ length: 50 }, (_, i) => `X-${i}: ${"s".repeat(20)}\r\n`);
    const r = split2(fields.join("") + "\r\nbody\r\n", 100);
    assertEquals(r.headers, fields);
    assertEquals([r.rest, r.truncated], ["\r\nbody\r\n", false]);
  });

  await t.step("a field of exactly maxBytes is kept whole", () => {
    const field = "A: " + "x".repeat(37) + "\r\n"; // 40 bytes without CRLF
    assertEquals(split2(field + "\r\n", 40).headers, [field]);
    assertEquals(split2(field + "\r\n", 40).truncated, false);
  });

  await t.step("a long line is cut at maxBytes, its excess discarded, later fields kept", () => {
    const r = split2("A: " + "x".repeat(5000) + "\r\nB: 2\r\n\r\nbody", 2000);
    assertEquals(r.headers, ["A: " + "x".repeat(1997) + "\r\n", "B: 2\r\n"]);
    assertEquals([r.rest, r.truncated], ["\r\nbody", true]);
  });

  await t.step("folded: lines are added while under the limit, then cut at a line end", () => {
    // Postfix's nice cut: the last line that crosses the limit goes when over 90 % is kept.
    const lines = Array.from({ length: 10 }, (_, i) => `\tline${i} ${"f".repeat(12)}`);
    const text = "F: started\r\n" + lines.join("\r\n") + "\r\nG: 1\r\n\r\n";
    // "F: started" is 10 bytes, each line 19 plus the newline: after 4 lines 90 < 100, so
    // line4 is added; it starts at 91 > 90 % of 100 and would end at 110: cut before it.
    const r = split2(text, 100);
    assertEquals(r.headers, [
      "F: started\r\n" + lines.slice(0, 4).join("\r\n") + "\r\n",
      "G: 1\r\n",
    ]);
    assertEquals(r.truncated, true);
    // Under 90 %: the line is cut within (the unkind cut), and ends in CRLF.
    const u = split2("F: s\r\n\t" + "y".repeat(200) + "\r\n\r\n", 100);
    assertEquals(u.headers, ["F: s\r\n\t" + "y".repeat(94) + "\r\n"]);
  });

  await t.step("records: a long line counts in line_length_limit pieces", () => {
    // The first record (16 bytes) is kept whole though over the limit of 10, then cut to 10.
    const r = split2("A: 0123456789abcdefghij\r\n\r\n", 10, 16);
    assertEquals(r.headers, ["A: 0123456\r\n"]);
    // A label without its colon in the first record is body.
    const b = split2("X".repeat(20) + ": v\r\n\r\n", 100, 16);
    assertEquals([b.headers, b.rest], [[], "X".repeat(20) + ": v\r\n\r\n"]);
  });

  await t.step("an endless header line is not buffered", () => {
    const s = new HeaderSplitter({ maxBytes: 64 });
    assertEquals(s.push(enc.encode("A: 1\r\nX-Long: ")).done, false);
    for (let i = 0; i < 1000; i++) s.push(enc.encode("y".repeat(10_000)));
    const r = s.push(enc.encode("\r\nB: 2\r\n\r\nbody"));
    assertEquals(r.headers!.map((h) => dec.decode(h.raw)), [
      "A: 1\r\n",
      "X-Long: " + "y".repeat(56) + "\r\n",
      "B: 2\r\n",
    ]);
    assertEquals(dec.decode(r.rest!), "\r\nbody");
  });

  await t.step("maxSectionBytes ends the section at a field boundary", () => {
    const s = new HeaderSplitter({ maxBytes: 100, maxSectionBytes: 20 });
    const r = s.push(enc.encode("A: 12345678\r\nB: 12345678\r\nC: 1\r\n\r\nbody"));
    assertEquals(r.headers!.map((h) => h.name), ["A", "B"]);
    assertEquals([dec.decode(r.rest!), r.truncated], ["C: 1\r\n\r\nbody", true]);
  });

  await t.step("random messages under the limit stay lossless in any chunking", () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const pieces = [
      "A: x\r\n",
      " cont\r\n",
      "\tc2\r\n",
      "Long-Name: " + "v".repeat(30) + "\r\n",
      "\r\n",
      "body\r\n",
      "B:\r\n",
    ];
    for (let round = 0; round < 300; round++) {
      let text = "";
      for (let i = rand(12); i >= 0; i--) text += pieces[rand(pieces.length)];
      const bytes = enc.encode(text);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < bytes.length;) {
        const n = 1 + rand(10);
        chunks.push(bytes.slice(at, at + n));
        at += n;
      }
      const big = split(chunks, 10_000);
      assertLossless(text, big);
      assertEquals(big.truncated, false);
      // With a small limit: the same result whatever the chunking, each field within it.
      const max = 10 + rand(80);
      const r = split(chunks, max);
      const whole = split([bytes], max);
      assertEquals(
        r.headers.map((h) => dec.decode(h.raw)),
        whole.headers.map((h) => dec.decode(h.raw)),
      );
      assertEquals([r.rest, r.truncated], [whole.rest, whole.truncated], JSON.stringify(text));
      for (const h of r.headers) assert(h.raw.length <= max + 2 * 4, dec.decode(h.raw));
    }
  });
});

Deno.test("formatHeader", async (t) => {
  await t.step("writes Name: value CRLF", () => {
    assertEquals(dec.decode(formatHeader("Subject", "hello world")), "Subject: hello world\r\n");
  });

  await t.step("folds long values at white space within 78 characters", () => {
    const value = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    const text = dec.decode(formatHeader("X-Long", value));
    const lines = text.split("\r\n");
    assertEquals(lines.pop(), "");
    assert(lines.length > 1);
    for (const l of lines) assert(l.length <= 78, l);
    for (const l of lines.slice(1)) assert(l.startsWith(" "), l);
    // Parsing it back gives the value again.
    const r = splitText(text + "\r\n");
    assertEquals(r.headers[0].value, value);
  });

  await t.step("leaves a word longer than the line unfolded", () => {
    const long = "x".repeat(100);
    assertEquals(dec.decode(formatHeader("X", `a ${long} b`)), `X: a\r\n ${long}\r\n b\r\n`);
  });

  await t.step("cannot be used to inject a field", () => {
    const text = dec.decode(formatHeader("Subject", "hi\r\nBcc: victim@example.com"));
    assertEquals(text, "Subject: hi Bcc: victim@example.com\r\n");
    assertEquals(dec.decode(formatHeader("Subject", "a\r\n b")), "Subject: a b\r\n");
  });

  await t.step("writes an empty value", () => {
    assertEquals(dec.decode(formatHeader("X-Empty", "")), "X-Empty:\r\n");
  });
});

Deno.test("rfc2822Date", async (t) => {
  await t.step("formats UTC like Postfix mail_date()", () => {
    assertEquals(
      rfc2822Date(new Date(Date.UTC(2026, 10, 30, 16, 28, 42))),
      "Mon, 30 Nov 2026 16:28:42 +0000 (UTC)",
    );
  });

  await t.step("pads the day of month with a space (%e)", () => {
    assertEquals(
      rfc2822Date(new Date(Date.UTC(2026, 0, 2, 3, 4, 5))),
      "Fri,  2 Jan 2026 03:04:05 +0000 (UTC)",
    );
  });

  await t.step("applies an offset, crossing the day", () => {
    const d = new Date(Date.UTC(2026, 11, 31, 23, 30, 0));
    assertEquals(rfc2822Date(d, 60), "Fri,  1 Jan 2027 00:30:00 +0100");
    assertEquals(rfc2822Date(d, -330), "Thu, 31 Dec 2026 18:00:00 -0530");
    assertEquals(rfc2822Date(d, -30), "Thu, 31 Dec 2026 23:00:00 -0030");
  });
});

Deno.test("xtext", async (t) => {
  await t.step("encodes per RFC 3461", () => {
    assertEquals(xtextEncode("rfc822;user@example.com"), "rfc822;user@example.com");
    assertEquals(xtextEncode("a+b=c d"), "a+2Bb+3Dc+20d");
    assertEquals(xtextEncode("\u00e9"), "+C3+A9");
    assertEquals(xtextEncode("\x7f\x00"), "+7F+00");
  });

  await t.step("decodes, accepting lower-case hex", () => {
    assertEquals(xtextDecode("a+2Bb+3dc+20d"), "a+b=c d");
    assertEquals(xtextDecode("+C3+A9t+C3+A9"), "\u00e9t\u00e9");
    assertEquals(xtextDecode("plain"), "plain");
  });

  await t.step("round-trips", () => {
    for (const s of ["", "user+tag@example.com", "=?weird?=", "tab\there", "\u{1f600}@x"]) {
      assertEquals(xtextDecode(xtextEncode(s)), s);
    }
  });

  await t.step("rejects malformed escapes", () => {
    for (const s of ["+", "+4", "+4G", "abc+"]) {
      assertThrows(() => xtextDecode(s), XtextError);
    }
  });
});

Deno.test("HeaderSplitter copies what it keeps", () => {
  const buf = new Uint8Array(8);
  const s = new HeaderSplitter({ maxBytes: 100 });
  buf.set(enc.encode("A: 1\r\nB:"));
  s.push(buf);
  buf.set(enc.encode(" 2\r\n\r\nxx"));
  const r = s.push(buf);
  buf.fill(0x21);
  assertEquals(r.headers!.map((h) => dec.decode(h.raw)), ["A: 1\r\n", "B: 2\r\n"]);
});
