/** Tests for what pipe(8) writes to the command: envelope lines, eol=, the . > B flags. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { asctime, envelopeLines, LineCopier } from "./mail_copy.ts";

const dec = new TextDecoder();
const enc = new TextEncoder();

function copy(flags: string, eol: string, chunks: string[]): string {
  const c = new LineCopier({ flags: new Set(flags), eol });
  const out: Uint8Array[] = [];
  for (const ch of chunks) out.push(...c.push(enc.encode(ch)));
  out.push(...c.end());
  return out.map((b) => dec.decode(b)).join("");
}

Deno.test("pipe message copy", async (t) => {
  await t.step("CRLF lines end in eol=", () => {
    assertEquals(copy("", "\n", ["a: b\r\n\r\nbody\r\n"]), "a: b\n\nbody\n");
    assertEquals(copy("", "\r\n", ["a\r\nb\r\n"]), "a\r\nb\r\n");
  });
  await t.step(". and > quote line starts, also across chunk boundaries", () => {
    assertEquals(
      copy(".>", "\n", ["x\r\n.", "dot\r\nFr", "om me\r\nFrom\r\n"]),
      "x\n..dot\n>From me\nFrom\n",
    );
    assertEquals(copy("", "\n", [".a\r\nFrom b\r\n"]), ".a\nFrom b\n");
  });
  await t.step("B adds a blank line; an unterminated last line is ended", () => {
    assertEquals(copy("B", "\n", ["a\r\nb"]), "a\nb\n\n");
  });
  await t.step("a CRLF split between chunks", () => {
    assertEquals(copy("", "\n", ["a\r", "\nb\r\n"]), "a\nb\n");
  });
  await t.step("a very long line is passed on in pieces; only its start is quoted", () => {
    const long = "From " + "x".repeat(200_000);
    const out = copy(">", "\n", [long.slice(0, 70_000), long.slice(70_000) + "\r\n"]);
    assertEquals(out, ">" + long + "\n");
  });
  await t.step("envelope lines in Postfix's order, quoted, controls masked", () => {
    const now = new Date(2026, 11, 2, 6, 7, 17);
    const head = dec.decode(envelopeLines({
      sender: "a b@x.example",
      recipient: "Joe@Dom.Example",
      original: "orig\n@x.example",
      flags: new Set("FROD"),
      eol: "\n",
      now,
    }));
    assertEquals(
      head,
      `From "a b"@x.example  ${asctime(now)}\n` +
        'Return-Path: <"a b"@x.example>\n' +
        'X-Original-To: "orig?"@x.example\n' +
        "Delivered-To: Joe@Dom.Example\n",
    );
    assertEquals(asctime(now), "Wed Dec  2 06:07:17 2026");
    const nul = dec.decode(envelopeLines({
      sender: "",
      recipient: "r@x",
      original: "r@x",
      flags: new Set("FR"),
      eol: "\r\n",
      now,
    }));
    assertEquals(nul, `From MAILER-DAEMON  ${asctime(now)}\r\nReturn-Path: <>\r\n`);
  });
});
