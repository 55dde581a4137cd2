/** Unit tests for tags.ts: RFC 6376 section 3.2 tag lists and base64 values. */
import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { compact, decodeBase64, parseTagList, TagListError } from "./tags.ts";

Deno.test("parseTagList", async (t) => {
  await t.step("tags in order, whitespace and folding around names, = and values ignored", () => {
    const tags = parseTagList(" v=1;a = rsa-sha256 ;\r\n\tc=relaxed/simple; d=\texample.com\t;");
    assertEquals([...tags], [["v", "1"], ["a", "rsa-sha256"], ["c", "relaxed/simple"], [
      "d",
      "example.com",
    ]]);
  });
  await t.step("whitespace inside a value is kept; compact() removes it for base64", () => {
    const tags = parseTagList("h=from : to\r\n :subject; b=dGVz\r\n\tdA =\r\n =");
    assertEquals(tags.get("h"), "from : to\r\n :subject");
    assertEquals(compact(tags.get("b")!), "dGVzdA==");
  });
  await t.step("values may be empty and may hold '='", () => {
    assertEquals([...parseTagList("p=; b=YQ==")], [["p", ""], ["b", "YQ=="]]);
  });
  await t.step("unknown tags are kept (the caller ignores them); names are case-sensitive", () => {
    assertEquals([...parseTagList("V=1; v=2; x_y9=z")], [["V", "1"], ["v", "2"], ["x_y9", "z"]]);
  });
  await t.step("empty specs are skipped", () => {
    assertEquals([...parseTagList("a=1;; b=2; ;")], [["a", "1"], ["b", "2"]]);
    assertEquals(parseTagList("").size, 0);
  });
  await t.step("a tag given twice is an error", () => {
    assertThrows(() => parseTagList("a=1; b=2; a=1"), TagListError, "a= is given twice");
  });
  await t.step("syntax errors", () => {
    for (const bad of ["a", "a=1; b", "=1", "1a=2", "a-b=1", "a b=1", "a=\x00", "a=caf\xe9"]) {
      assertThrows(() => parseTagList(bad), TagListError);
    }
  });
});

Deno.test("decodeBase64", () => {
  assertEquals(decodeBase64("AQAB"), new Uint8Array([1, 0, 1]));
  assertEquals(decodeBase64("AQA"), new Uint8Array([1, 0]), "padding is optional");
  assertEquals(decodeBase64(""), new Uint8Array(0));
  for (const bad of ["A", "AQ*B", "AQ==AQ==", "ÿÿÿÿ", "AQAB=="]) {
    assertEquals(decodeBase64(bad), undefined, bad);
  }
});
