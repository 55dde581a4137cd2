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

Deno.test("HeaderSplitter size limit (header_size_limit)", async (t) => {
  const input = "A: 1234567890\r\n" + // 15 bytes
    "B: 1234567890\r\n" + // 30
    "C: 1234567890\r\n" + // 45
    "\r\nbody\r\n";

  await t.step("keeps what fits and returns the rest as body", () => {
    for (const chunks of chunkings(input)) {
      const r = split(chunks, 40);
      assertEquals(r.headers.map((h) => h.name), ["A", "B"]);
      assertEquals(r.truncated, true);
      assertEquals(r.rest, "C: 1234567890\r\n\r\nbody\r\n");
      assertLossless(input, r);
    }
  });

  await t.step("a header section of exactly maxBytes is not truncated", () => {
    for (const chunks of chunkings(input)) {
      const r = split(chunks, 45);
      assertEquals(r.headers.length, 3);
      assertEquals(r.truncated, false);
      assertEquals(r.rest, "\r\nbody\r\n");
    }
  });

  await t.step("moves a field whose continuation overflows to the body whole", () => {
    const folded = "A: 1\r\nB: 2\r\n 3\r\n 4\r\n\r\n";
    for (const chunks of chunkings(folded)) {
      const r = split(chunks, 15);
      assertEquals(r.headers.map((h) => h.name), ["A"]);
      assertEquals(r.truncated, true);
      assertEquals(r.rest, "B: 2\r\n 3\r\n 4\r\n\r\n");
    }
  });

  await t.step("does not buffer an endless line past the limit", () => {
    const s = new HeaderSplitter({ maxBytes: 64 });
    assertEquals(s.push(enc.encode("A: 1\r\nX-Long: ")).done, false);
    let r = s.push(enc.encode("y".repeat(40)));
    assertEquals(r.done, false);
    r = s.push(enc.encode("y".repeat(40)));
    assertEquals(r.done, true);
    assertEquals(r.truncated, true);
    assertEquals(r.headers!.map((h) => h.name), ["A"]);
    assertEquals(dec.decode(r.rest!), "X-Long: " + "y".repeat(80));
  });

  await t.step("a first field larger than the limit leaves no headers", () => {
    const r = splitText("Subject: " + "z".repeat(100) + "\r\n\r\n", 50);
    assertEquals(r.headers, []);
    assertEquals(r.truncated, true);
  });

  await t.step("random messages and chunkings stay lossless", () => {
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
      const max = 10 + rand(80);
      const r = split(chunks, max);
      assertLossless(text, r);
      const size = r.headers.reduce((n, h) => n + h.raw.length, 0);
      assert(size <= max, `header ${size} > ${max}`);
      const whole = split([bytes], max);
      assertEquals(r.rest, whole.rest, JSON.stringify(text));
      assertEquals(r.truncated, whole.truncated, JSON.stringify(text));
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
