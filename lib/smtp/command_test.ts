/** parseCommand, formatReply and LineReader, with property tests for splits and junk. */
import fc from "fast-check";
import { assertEquals } from "../../tests/helpers/assert.ts";
import { formatReply, type Line, LineReader, parseCommand } from "./command.ts";
import { chunksAt, latin1, unlatin1 } from "./_test_util.ts";

Deno.test("parseCommand", async (t) => {
  const cases: [string | Uint8Array, string, string][] = [
    ["MAIL FROM:<a@b> SIZE=1\r\n", "MAIL", "FROM:<a@b> SIZE=1"],
    ["mail from: <a@b>", "MAIL", "from: <a@b>"],
    ["ehlo   client.example  \r\n", "EHLO", "client.example  "],
    ["  QUIT", "QUIT", ""],
    ["quit\n", "QUIT", ""],
    ["NOOP\tx", "NOOP", "x"],
    ["RSET\v", "RSET", ""],
    ["MAIL\fFROM:<a@b>", "MAIL", "FROM:<a@b>"],
    ["", "", ""],
    ["\r\n", "", ""],
    ["   \r\n", "", ""],
    [latin1("RCPT TO:<a@b>\r\n"), "RCPT", "TO:<a@b>"],
    [new TextEncoder().encode("RCPT TO:<jö@b>"), "RCPT", "TO:<jö@b>"],
    [latin1("RCPT TO:<j\xff@b>"), "RCPT", "TO:<j\ufffd@b>"],
  ];
  for (const [line, verb, arg] of cases) {
    await t.step(JSON.stringify(typeof line === "string" ? line : unlatin1(line)), () => {
      assertEquals(parseCommand(line), { verb, arg });
    });
  }
  await t.step("never throws (property)", () => {
    fc.assert(fc.property(fc.string(), (s) => void parseCommand(s)), { numRuns: 1000 });
    fc.assert(fc.property(fc.uint8Array(), (b) => void parseCommand(b)), { numRuns: 1000 });
  });
});

Deno.test("formatReply", async (t) => {
  await t.step("single line with enhanced code", () => {
    assertEquals(formatReply(250, "2.1.0", "Ok"), "250 2.1.0 Ok\r\n");
  });
  await t.step("control characters become spaces", () => {
    assertEquals(
      formatReply(554, "5.7.1", "<a\tb\x01c\x1bd\x7fe\x00f@x>: denied"),
      "554 5.7.1 <a b c d e f@x>: denied\r\n",
    );
  });
  await t.step("without enhanced code", () => {
    assertEquals(formatReply(220, null, "mx ESMTP"), "220 mx ESMTP\r\n");
  });
  await t.step("multiline repeats the enhanced code", () => {
    assertEquals(
      formatReply(550, "5.7.1", ["Rejected", "see policy"]),
      "550-5.7.1 Rejected\r\n550 5.7.1 see policy\r\n",
    );
  });
  await t.step("EHLO style multiline without enhanced codes", () => {
    assertEquals(
      formatReply(250, null, ["mx", "PIPELINING", "SIZE 10240000"]),
      "250-mx\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n",
    );
  });
  await t.step("newlines in text become separate lines", () => {
    assertEquals(
      formatReply(451, "4.3.0", "a\nb\r\nc"),
      "451-4.3.0 a\r\n451-4.3.0 b\r\n451 4.3.0 c\r\n",
    );
  });
  await t.step("empty text", () => {
    assertEquals(formatReply(250, null, ""), "250\r\n");
    assertEquals(formatReply(250, "2.0.0", []), "250 2.0.0\r\n");
    assertEquals(formatReply(250, null, ["", "x"]), "250-\r\n250 x\r\n");
  });
});

function readAll(chunks: Uint8Array[], max?: number): [string, boolean, boolean][] {
  const r = new LineReader({ maxLineLength: max });
  const out: [string, boolean, boolean][] = [];
  const take = (l: Line) => out.push([unlatin1(l.line), l.bareLf, l.tooLong]);
  for (const c of chunks) {
    r.push(c);
    for (let l = r.next(); l; l = r.next()) take(l);
  }
  return out;
}

Deno.test("LineReader", async (t) => {
  await t.step("CRLF and bare LF lines", () => {
    assertEquals(readAll([latin1("EHLO x\r\nMAIL\nRCPT\r\npartial")]), [
      ["EHLO x", false, false],
      ["MAIL", true, false],
      ["RCPT", false, false],
    ]);
  });
  await t.step("CR and LF in separate chunks", () => {
    assertEquals(readAll([latin1("QUIT\r"), latin1("\nNOOP\r"), latin1("\n")]), [
      ["QUIT", false, false],
      ["NOOP", false, false],
    ]);
  });
  await t.step("bare CR inside a line is kept", () => {
    assertEquals(readAll([latin1("a\rb\r\n")]), [["a\rb", false, false]]);
  });
  await t.step("over-long line in one chunk", () => {
    assertEquals(readAll([latin1("abcdefgh\r\nok\r\n")], 4), [
      ["abcd", false, true],
      ["ok", false, false],
    ]);
  });
  await t.step("over-long line across chunks: head kept, tail discarded", () => {
    assertEquals(
      readAll([latin1("abcdefg"), latin1("hijk"), latin1("lm\r"), latin1("\nok\n")], 4),
      [
        ["abcd", false, true],
        ["ok", true, false],
      ],
    );
  });
  await t.step("line of exactly the limit with CRLF split is not too long", () => {
    assertEquals(readAll([latin1("abcd\r"), latin1("\n")], 4), [["abcd", false, false]]);
    assertEquals(readAll([latin1("abcde")], 4), []);
    assertEquals(readAll([latin1("abcde"), latin1("\n")], 4), [["abcd", true, true]]);
  });
  await t.step("takeBuffered hands over unread bytes (DATA, STARTTLS)", () => {
    const r = new LineReader();
    r.push(latin1("DATA\r\nSubject: x\r\n"));
    assertEquals(unlatin1(r.next()!.line), "DATA");
    assertEquals(r.buffered, 12);
    assertEquals(unlatin1(r.takeBuffered()), "Subject: x\r\n");
    assertEquals([r.buffered, r.next()], [0, null]);
    r.push(latin1("QUIT\r\n"));
    assertEquals(unlatin1(r.next()!.line), "QUIT");
  });
  await t.step("pending shows unread bytes without consuming them", () => {
    const r = new LineReader();
    r.push(latin1("HELO a\r\nMAIL FROM:<x@y>\r\n"));
    assertEquals(unlatin1(r.pending(100)), "HELO a\r\nMAIL FROM:<x@y>\r\n");
    assertEquals(unlatin1(r.next()!.line), "HELO a");
    assertEquals(unlatin1(r.pending(4)), "MAIL");
    assertEquals(unlatin1(r.next()!.line), "MAIL FROM:<x@y>");
    assertEquals(r.pending(100).length, 0);
  });
  await t.step("readLine over a ReadableStream; null at end", async () => {
    const stream = ReadableStream.from([latin1("HELO a\r\nNO"), latin1("OP\r\nQUI")]);
    const reader = stream.getReader();
    const r = new LineReader();
    assertEquals(unlatin1((await r.readLine(reader))!.line), "HELO a");
    assertEquals(unlatin1((await r.readLine(reader))!.line), "NOOP");
    assertEquals(await r.readLine(reader), null);
  });
  await t.step("random chunk splits give the same lines (property)", () => {
    const byte = fc.oneof(fc.constantFrom(13, 10, 97), fc.integer({ min: 0, max: 255 }));
    fc.assert(
      fc.property(
        fc.array(byte, { maxLength: 120 }).map((a) => new Uint8Array(a)),
        fc.array(fc.nat({ max: 120 }), { maxLength: 10 }),
        fc.integer({ min: 1, max: 12 }),
        (raw, cuts, max) => {
          assertEquals(readAll(chunksAt(raw, cuts), max), readAll([raw], max));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
