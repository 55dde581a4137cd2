/**
 * Unit tests for canon.ts: RFC 6376 section 3.4's header and body
 * canonicalizations, against the RFC's example (3.4.5), the empty-body
 * cases, and a naive reference implementation on random bodies cut into
 * random chunks.
 */
import fc from "fast-check";
import { createHash } from "node:crypto";
import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  BodyHasher,
  type Canonicalization,
  canonicalizeHeader,
  latin1,
  latin1Bytes,
  parseCanonicalization,
  relaxedHeader,
  simpleHeader,
} from "./canon.ts";
import { bytes } from "./testing.ts";

/** Hashes `body` fed in the given chunks. */
function hashBody(
  body: Uint8Array,
  canon: Canonicalization,
  cuts: number[] = [],
  limit?: number,
) {
  const h = new BodyHasher(canon, { limit });
  let at = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    h.update(body.subarray(at, cut));
    at = cut;
  }
  h.update(body.subarray(at));
  const { hash, length } = h.digest();
  return { hash: hash.toBase64(), length };
}

/** What the hash of a canonical body `text` is. */
function expected(text: string) {
  return {
    hash: createHash("sha256").update(latin1Bytes(text)).digest("base64"),
    length: text.length,
  };
}

/** The body canonicalizations written the obvious way, one line at a time. */
function reference(body: string, canon: Canonicalization): string {
  let lines = body.split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  if (canon === "relaxed") lines = lines.map((l) => l.replace(/[ \t]+/g, " ").replace(/ $/, ""));
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  const out = lines.map((l) => `${l}\r\n`).join("");
  return canon === "simple" && out === "" ? "\r\n" : out;
}

Deno.test("RFC 6376 section 3.4.5 example", async (t) => {
  const header = ["A: X\r\n", "B : Y\t\r\n\tZ  \r\n"];
  const body = bytes(" C \r\nD \t E\r\n\r\n\r\n");
  await t.step("relaxed", () => {
    assertEquals(header.map(relaxedHeader).join(""), "a:X\r\nb:Y Z\r\n");
    assertEquals(hashBody(body, "relaxed"), expected(" C\r\nD E\r\n"));
  });
  await t.step("simple", () => {
    assertEquals(header.map(simpleHeader).join(""), "A: X\r\nB : Y\t\r\n\tZ  \r\n");
    assertEquals(hashBody(body, "simple"), expected(" C \r\nD \t E\r\n"));
  });
});

Deno.test("header canonicalization", async (t) => {
  await t.step("relaxed: name lowercased, unfolded, runs of whitespace one space", () => {
    assertEquals(
      relaxedHeader("SUBJECT \t:  a  \t b\r\n  c \r\n"),
      "subject:a b c\r\n",
    );
    assertEquals(relaxedHeader("X-Empty:\r\n"), "x-empty:\r\n");
    assertEquals(relaxedHeader("X-Empty:   \r\n \r\n"), "x-empty:\r\n");
  });
  await t.step("bare LF counts as CRLF; a final CRLF is added when missing", () => {
    assertEquals(simpleHeader("A: b\n c\n"), "A: b\r\n c\r\n");
    assertEquals(simpleHeader("A: b"), "A: b\r\n");
    assertEquals(relaxedHeader("A: b\n c"), "a:b c\r\n");
  });
  await t.step("8-bit bytes pass through unchanged", () => {
    const field = latin1(bytes("Subject: caf\xc3\xa9 \xe9\r\n"));
    assertEquals(canonicalizeHeader(field, "relaxed"), "subject:caf\xc3\xa9 \xe9\r\n");
    assertEquals(canonicalizeHeader(field, "simple"), field);
  });
  await t.step("c= values", () => {
    assertEquals(parseCanonicalization("relaxed/simple"), { header: "relaxed", body: "simple" });
    assertEquals(parseCanonicalization("Relaxed"), { header: "relaxed", body: "simple" });
    assertEquals(parseCanonicalization("simple/relaxed/"), undefined);
    assertEquals(parseCanonicalization("nofws"), undefined);
  });
});

Deno.test("body canonicalization", async (t) => {
  await t.step("an empty body is CRLF in simple, nothing in relaxed", () => {
    assertEquals(
      hashBody(bytes(""), "simple").hash,
      "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=",
    );
    assertEquals(
      hashBody(bytes(""), "relaxed").hash,
      "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    );
    assertEquals(hashBody(bytes("\r\n\r\n"), "simple"), expected("\r\n"));
    assertEquals(hashBody(bytes("\r\n \t\r\n"), "relaxed"), expected(""));
  });
  await t.step("a last line without CRLF gets one", () => {
    assertEquals(hashBody(bytes("a\r\nb"), "simple"), expected("a\r\nb\r\n"));
    assertEquals(hashBody(bytes("a \t"), "relaxed"), expected("a\r\n"));
  });
  await t.step("empty lines are dropped only at the end", () => {
    assertEquals(
      hashBody(bytes("\r\n\r\na\r\n\r\n \r\nb\r\n\r\n"), "simple"),
      expected(
        "\r\n\r\na\r\n\r\n \r\nb\r\n",
      ),
    );
    assertEquals(
      hashBody(bytes("\r\n\r\na\r\n\r\n \r\nb \r\n \r\n\t\r\n"), "relaxed"),
      expected("\r\n\r\na\r\n\r\n\r\nb\r\n"),
    );
  });
  await t.step("bare LF is a line end, a bare CR an ordinary byte", () => {
    assertEquals(hashBody(bytes("a\nb\r\rc\r\n\n"), "simple"), expected("a\r\nb\r\rc\r\n"));
    assertEquals(hashBody(bytes("a \r b\r"), "relaxed"), expected("a \r b\r\r\n"));
  });
  await t.step("a limit hashes the first bytes and still counts them all", () => {
    assertEquals(hashBody(bytes("abc\r\ndef\r\n"), "simple", [], 4), {
      hash: expected("abc\r").hash,
      length: 10,
    });
    assertEquals(hashBody(bytes("abc\r\n"), "relaxed", [], 0), {
      hash: expected("").hash,
      length: 5,
    });
  });
  await t.step("long bodies cross the internal buffer", () => {
    const line = "x".repeat(999) + "  \r\n";
    const body = line.repeat(100);
    assertEquals(hashBody(bytes(body), "simple"), expected(body));
    assertEquals(
      hashBody(bytes(body), "relaxed"),
      expected(("x".repeat(999) + "\r\n").repeat(100)),
    );
  });
});

Deno.test("body canonicalization agrees with the reference, cut anywhere", () => {
  const char = fc.constantFrom("a", "b", " ", "\t", "\r", "\n", "\r\n", "\xe9");
  fc.assert(
    fc.property(
      fc.stringOf(char, { maxLength: 60 }),
      fc.array(fc.nat(), { maxLength: 8 }),
      fc.constantFrom<Canonicalization>("simple", "relaxed"),
      (body, cuts, canon) => {
        const b = bytes(body);
        const got = hashBody(b, canon, cuts.map((c) => c % (b.length + 1)));
        assertEquals(got, expected(reference(body, canon)));
      },
    ),
    { numRuns: 2000 },
  );
});
