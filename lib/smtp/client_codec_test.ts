/** ReplyParser, parseEhloKeywords, DotStuffer and CrlfToLf, with split-invariance properties. */
import fc from "fast-check";
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import {
  CrlfToLf,
  DotStuffer,
  parseEhloKeywords,
  type Reply,
  ReplyParser,
  SmtpProtocolError,
} from "./client_codec.ts";
import { chunksAt, concatBytes, latin1, unlatin1 } from "./_test_util.ts";

function parseAll(chunks: Uint8Array[]): Reply[] {
  const p = new ReplyParser();
  return chunks.flatMap((c) => p.push(c));
}

Deno.test("ReplyParser", async (t) => {
  await t.step("single line with enhanced code", () => {
    assertEquals(parseAll([latin1("250 2.1.0 Ok\r\n")]), [
      { code: 250, enhanced: "2.1.0", lines: ["Ok"], text: "Ok" },
    ]);
  });
  await t.step("multiline, enhanced code stripped from each line", () => {
    assertEquals(
      parseAll([latin1("550-5.7.1 Rejected\r\n550-5.7.1 see\r\n550 5.7.1 policy\r\n")]),
      [
        {
          code: 550,
          enhanced: "5.7.1",
          lines: ["Rejected", "see", "policy"],
          text: "Rejected see policy",
        },
      ],
    );
  });
  await t.step("EHLO reply split byte by byte, then a second reply", () => {
    const raw = latin1("250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n354 go ahead\r\n");
    const replies = parseAll([...raw].map((b) => new Uint8Array([b])));
    assertEquals(replies, [
      {
        code: 250,
        enhanced: null,
        lines: ["mx.example", "PIPELINING", "SIZE 1000"],
        text: "mx.example PIPELINING SIZE 1000",
      },
      { code: 354, enhanced: null, lines: ["go ahead"], text: "go ahead" },
    ]);
  });
  await t.step("enhanced code of another class is text", () => {
    assertEquals(parseAll([latin1("450 5.1.1 odd\r\n")])[0].enhanced, null);
    assertEquals(parseAll([latin1("450 5.1.1 odd\r\n")])[0].text, "5.1.1 odd");
  });
  await t.step("code only, bare LF", () => {
    assertEquals(parseAll([latin1("250\n")]), [{
      code: 250,
      enhanced: null,
      lines: [""],
      text: "",
    }]);
    assertEquals(parseAll([latin1("221 2.0.0\r\n")]), [
      { code: 221, enhanced: "2.0.0", lines: [""], text: "" },
    ]);
  });
  await t.step("partial reply is pending", () => {
    const p = new ReplyParser();
    assertEquals(p.push(latin1("250-a\r\n250 b")), []);
    assertEquals(p.pending, true);
    assertEquals(p.push(latin1("\r\n")).length, 1);
    assertEquals(p.pending, false);
  });
  for (const bad of ["", "25", "abc ok", "250x", "2500 x", "650 x", "099 x", "250_x"]) {
    await t.step(`malformed ${JSON.stringify(bad)} throws`, () => {
      assertThrows(() => new ReplyParser().push(latin1(bad + "\r\n")), SmtpProtocolError);
    });
  }
  await t.step("replies before a malformed line are returned; the next push throws", () => {
    const p = new ReplyParser();
    assertEquals(p.push(latin1("250 ok\r\nbad\r\n")).length, 1);
    assertThrows(() => p.push(new Uint8Array(0)), SmtpProtocolError, "malformed");
    assertThrows(() => p.push(latin1("250 ok\r\n")), SmtpProtocolError);
  });
  await t.step("too many lines throws", () => {
    const p = new ReplyParser({ maxLines: 3 });
    assertThrows(() => p.push(latin1("250-a\r\n250-b\r\n250-c\r\n250 d\r\n")), SmtpProtocolError);
  });
  await t.step(
    "random splits give the same replies, only SmtpProtocolError thrown (property)",
    () => {
      const line = fc.oneof(
        fc.constantFrom("250-x", "250 y", "550-5.1.1 a", "550 5.1.1 b", "354 go", "bad"),
        fc.string({ maxLength: 8 }),
      );
      fc.assert(
        fc.property(fc.array(line, { maxLength: 8 }), fc.array(fc.nat({ max: 80 })), (ls, cuts) => {
          const raw = new TextEncoder().encode(ls.map((l) => l + "\r\n").join(""));
          const run = (chunks: Uint8Array[]) => {
            const p = new ReplyParser();
            const got: Reply[] = [];
            try {
              for (const c of [...chunks, new Uint8Array(0)]) got.push(...p.push(c));
            } catch (e) {
              if (!(e instanceof SmtpProtocolError)) throw e;
              return { got, error: true };
            }
            return { got, error: false };
          };
          assertEquals(run(chunksAt(raw, cuts)), run([raw]));
        }),
        { numRuns: 1000 },
      );
    },
  );
});

Deno.test("parseEhloKeywords", async (t) => {
  await t.step("keywords uppercased with parameters", () => {
    const [reply] = parseAll([
      latin1(
        "250-mx.example Hello\r\n250-size 1000\r\n250-PIPELINING\r\n250-AUTH PLAIN\r\n250-AUTH LOGIN\r\n250 8BITMIME\r\n",
      ),
    ]);
    assertEquals(
      parseEhloKeywords(reply),
      new Map([["SIZE", "1000"], ["PIPELINING", ""], ["AUTH", "PLAIN LOGIN"], ["8BITMIME", ""]]),
    );
  });
  await t.step("HELO-style single line has no keywords", () => {
    assertEquals(parseEhloKeywords(parseAll([latin1("250 mx\r\n")])[0]).size, 0);
  });
});

function stuff(chunks: Uint8Array[]): string {
  const s = new DotStuffer();
  return unlatin1(concatBytes([...chunks.map((c) => s.push(c)), s.end()]));
}

Deno.test("DotStuffer", async (t) => {
  const cases: [string, string][] = [
    ["", ".\r\n"],
    ["a\r\n", "a\r\n.\r\n"],
    ["a", "a\r\n.\r\n"],
    [".\r\n", "..\r\n.\r\n"],
    ["a\r\n.b\r\n..\r\n", "a\r\n..b\r\n...\r\n.\r\n"],
    ["a.b\r\n", "a.b\r\n.\r\n"],
    ["a\n.\r\n", "a\n..\r\n.\r\n"],
    ["a\n", "a\n\r\n.\r\n"],
    ["a\r", "a\r\r\n.\r\n"],
  ];
  for (const [input, wire] of cases) {
    await t.step(JSON.stringify(input), () => {
      assertEquals(stuff([latin1(input)]), wire);
      assertEquals(stuff([...latin1(input)].map((b) => new Uint8Array([b]))), wire);
    });
  }
  await t.step("chunk without stuffing is returned as is", () => {
    const c = latin1("no dots at line start.\r\n");
    assertEquals(new DotStuffer().push(c), c);
  });
  await t.step("random splits give the same output (property)", () => {
    const bytes = fc.array(fc.constantFrom(13, 10, 46, 97), { maxLength: 100 }).map((a) =>
      new Uint8Array(a)
    );
    fc.assert(
      fc.property(bytes, fc.array(fc.nat({ max: 100 })), (raw, cuts) => {
        assertEquals(stuff(chunksAt(raw, cuts)), stuff([raw]));
      }),
      { numRuns: 1000 },
    );
  });
});

function toLf(chunks: Uint8Array[]): string {
  const c = new CrlfToLf();
  return unlatin1(concatBytes([...chunks.map((x) => c.push(x)), c.end()]));
}

Deno.test("CrlfToLf", async (t) => {
  const cases: [string, string][] = [
    ["", ""],
    ["a\r\nb\r\n", "a\nb\n"],
    ["a\rb\r\n", "a\rb\n"],
    ["a\r\r\n", "a\r\n"],
    ["a\r", "a\r"],
    ["\r\n\r\n", "\n\n"],
    ["no cr\n", "no cr\n"],
  ];
  for (const [input, out] of cases) {
    await t.step(JSON.stringify(input), () => {
      assertEquals(toLf([latin1(input)]), out);
      assertEquals(toLf([...latin1(input)].map((b) => new Uint8Array([b]))), out);
    });
  }
  await t.step("random splits equal String replace (property)", () => {
    const bytes = fc.array(fc.constantFrom(13, 10, 97), { maxLength: 100 }).map((a) =>
      new Uint8Array(a)
    );
    fc.assert(
      fc.property(bytes, fc.array(fc.nat({ max: 100 })), (raw, cuts) => {
        assertEquals(toLf(chunksAt(raw, cuts)), unlatin1(raw).replaceAll("\r\n", "\n"));
      }),
      { numRuns: 1000 },
    );
  });
});
