import { assertEquals } from "../../tests/helpers/assert.ts";
import { type MimeEvent, MimeScanner, parseContentType } from "./scan.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs a body through the scanner; returns "B:line" and "H(class):header" entries. */
function scan(contentType: string, body: string): string[] {
  const s = new MimeScanner(contentType);
  const out: string[] = [];
  const show = (e: MimeEvent) =>
    e.kind === "body"
      ? `B:${dec.decode(e.raw).replace(/\r\n$/, "")}`
      : `H(${e.headerClass}):${e.lines.map((l) => dec.decode(l)).join("").replace(/\r\n$/, "")}`;
  for (const line of body.split(/(?<=\r\n)/)) {
    for (const e of s.push(enc.encode(line))) out.push(show(e));
  }
  for (const e of s.end()) out.push(show(e));
  return out;
}

Deno.test("MIME scanner", async (t) => {
  await t.step("Content-Type parsing", () => {
    assertEquals(parseContentType('Multipart/Mixed; charset=x; boundary="a b\\"c"'), {
      type: "multipart/mixed",
      boundary: 'a b"c',
    });
    assertEquals(parseContentType("text/plain"), { type: "text/plain", boundary: "" });
    assertEquals(parseContentType("garbage"), { type: "", boundary: "" });
  });
  await t.step("a plain body is body lines only", () => {
    assertEquals(scan("text/plain", "a\r\nContent-Type: x\r\n"), ["B:a", "B:Content-Type: x"]);
  });
  await t.step("multipart: part headers (folded ones joined), boundaries are body", () => {
    const body = "pre\r\n--b1\r\nContent-Type: text/plain;\r\n charset=us-ascii\r\nX-A: 1\r\n\r\n" +
      "text\r\n--b1--\r\nepilogue\r\n";
    assertEquals(scan('multipart/mixed; boundary="b1"', body), [
      "B:pre",
      "B:--b1",
      "H(multipart):Content-Type: text/plain;\r\n charset=us-ascii",
      "H(multipart):X-A: 1",
      "B:",
      "B:text",
      "B:--b1--",
      "B:epilogue",
    ]);
  });
  await t.step("attached message: its headers are nested, its multipart is followed", () => {
    const body = "--o\r\nContent-Type: message/rfc822\r\n\r\n" +
      "Subject: inner\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n" +
      "--i\r\nContent-Type: text/html\r\n\r\n<p>\r\n--i--\r\n--o--\r\n";
    assertEquals(scan("multipart/mixed; boundary=o", body), [
      "B:--o",
      "H(multipart):Content-Type: message/rfc822",
      "B:",
      "H(nested):Subject: inner",
      "H(nested):Content-Type: multipart/alternative; boundary=i",
      "B:",
      "B:--i",
      "H(multipart):Content-Type: text/html",
      "B:",
      "B:<p>",
      "B:--i--",
      "B:--o--",
    ]);
  });
  await t.step("a top-level message/rfc822 body starts with nested headers", () => {
    assertEquals(scan("message/rfc822", "From: x\r\n\r\nhi\r\n"), [
      "H(nested):From: x",
      "B:",
      "B:hi",
    ]);
  });
  await t.step("a part without headers or body: the next boundary is still a boundary", () => {
    const body = "--b\r\n--b\r\nX: 1\r\n\r\nt\r\n--b--\r\nX: after\r\n";
    assertEquals(scan("multipart/mixed; boundary=b", body), [
      "B:--b",
      "B:--b",
      "H(multipart):X: 1",
      "B:",
      "B:t",
      "B:--b--",
      "B:X: after",
    ]);
  });
  await t.step("boundaries match as a prefix (Postfix ignores trailing cruft)", () => {
    assertEquals(
      scan("multipart/mixed; boundary=b", "--b junk\r\nX: 1\r\n\r\n--b--x\r\nY: 2\r\n"),
      [
        "B:--b junk",
        "H(multipart):X: 1",
        "B:",
        "B:--b--x",
        "B:Y: 2",
      ],
    );
  });
  await t.step("multipart/digest parts are messages by default", () => {
    const body =
      "--d\r\n\r\nSubject: in digest\r\n\r\ntext\r\n--d\r\nContent-Type: text/plain\r\n\r\n" +
      "Subject: just text\r\n--d--\r\n";
    assertEquals(scan("multipart/digest; boundary=d", body), [
      "B:--d",
      "B:",
      "H(nested):Subject: in digest",
      "B:",
      "B:text",
      "B:--d",
      "H(multipart):Content-Type: text/plain",
      "B:",
      "B:Subject: just text",
      "B:--d--",
    ]);
  });
  await t.step("an attached message needs the blank line after its part headers", () => {
    assertEquals(
      scan(
        "multipart/mixed; boundary=b",
        "--b\r\nContent-Type: message/rfc822\r\n(junk)\r\nSubject: x\r\n",
      ),
      [
        "B:--b",
        "H(multipart):Content-Type: message/rfc822",
        "B:(junk)",
        "B:Subject: x",
      ],
    );
  });
  await t.step("an unknown boundary line is body text", () => {
    assertEquals(scan("multipart/mixed; boundary=b", "--c\r\nX: y\r\n"), ["B:--c", "B:X: y"]);
  });
});

Deno.test("MIME scanner: any input", async (t) => {
  const fc = (await import("fast-check")).default;
  await t.step("never throws, and every input byte comes out exactly once, in order", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("multipart/mixed; boundary=b", "message/rfc822", "text/plain", ""),
        fc.array(
          fc.constantFrom(
            "--b\r\n",
            "--b--\r\n",
            "X: y\r\n",
            " z\r\n",
            "\r\n",
            "t\r\n",
            "Content-Type: multipart/mixed; boundary=c\r\n",
            "--c\r\n",
            "Content-Type: message/rfc822\r\n",
            "q",
          ),
        ),
        (ct: string, lines: string[]) => {
          const s = new MimeScanner(ct);
          const out: Uint8Array[] = [];
          const take = (e: MimeEvent) => e.kind === "body" ? out.push(e.raw) : out.push(...e.lines);
          for (const l of lines.join("").split(/(?<=\n)/)) {
            if (l) { for (const e of s.push(enc.encode(l))) take(e); }
          }
          for (const e of s.end()) take(e);
          assertEquals(out.map((b) => dec.decode(b)).join(""), lines.join(""));
        },
      ),
      { numRuns: 3000 },
    );
  });
});
