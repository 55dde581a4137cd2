/** Tests for parameter expansion (expand.ts), forms checked against Postfix 3.7 postconf -x. */

import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { ConfigError } from "./errors.ts";
import { expand, referencedNames } from "./expand.ts";

const vars: Record<string, string> = {
  host: "h.example.com",
  domain: "example.com",
  empty: "",
  dollar: "A$$B",
  nested: "$host/$domain",
  level: "3.6",
};
const lookup = (n: string) => vars[n];
const x = (s: string) => expand(s, lookup);

Deno.test("expand", async (t) => {
  await t.step("plain text and $$", () => {
    assertEquals(x("no vars"), "no vars");
    assertEquals(x("a$$b"), "a$b");
    assertEquals(x("$$host"), "$host");
  });
  await t.step("$name, ${name}, $(name), recursively", () => {
    assertEquals(x("$host,${domain};$(host)"), "h.example.com,example.com;h.example.com");
    assertEquals(x("[$nested]"), "[h.example.com/example.com]");
    assertEquals(x("$dollar"), "A$B");
    assertEquals(x("${ domain }"), "example.com");
  });
  await t.step("undefined names expand to empty and are reported", () => {
    const seen: string[] = [];
    assertEquals(expand("a${nope}b$nope2", lookup, { onUndefined: (n) => seen.push(n) }), "ab");
    assertEquals(seen, ["nope", "nope2"]);
  });
  await t.step("${name?value} and ${name:value}", () => {
    assertEquals(x("${domain?x:y}"), "x:y");
    assertEquals(x("${empty?x}"), "");
    assertEquals(x("${empty:x:y}"), "x:y");
    assertEquals(x("${domain:x}"), "");
    assertEquals(x("${nope:fallback $host}"), "fallback h.example.com");
  });
  await t.step("brace forms", () => {
    assertEquals(x("${domain?{ x }}|${{1} == {1} ? { y }}"), " x | y "); // payload verbatim
    assertEquals(x("${domain?{a}:{b}}"), "a");
    assertEquals(x("${empty?{a}:{b}}"), "b");
    assertEquals(x("${empty?{a}:b c}"), "b c");
    assertEquals(x("${empty:{$host}}"), "h.example.com");
    assertEquals(x("${domain?{${empty?{no}:{yes}}}}"), "yes");
  });
  await t.step("relational expressions", () => {
    assertEquals(x("${{10} < {9} ? {num} : {nonum}}"), "nonum");
    assertEquals(x("${{b} < {a} ? {lex} : {nolex}}"), "nolex");
    assertEquals(x("${{3.6} <level {3.10} ? {lt} : {ge}}"), "lt");
    assertEquals(x("${{$level} <level {2} ? {old} : {new}}"), "new");
    assertEquals(x("${{1} == {1}}|${{1} != {1}}"), "true|");
    assertEquals(x("${{1} == {1} ? x}"), "x");
    assertEquals(x("${ {1} == {2} :{n}}"), "n");
    assertEquals(x("${{$host} == {h.example.com} ? {same} : {diff} }"), "same");
    for (const [op, want] of [["<=", "y"], [">=", "n"], [">", "n"], ["!=", "y"]]) {
      assertEquals(x(`\${{1} ${op} {2} ? {y} : {n}}`), want, op);
    }
  });
  await t.step("syntax errors", () => {
    assertThrows(() => x("a$-b"), ConfigError, "empty macro name");
    assertThrows(() => x("$ x"), ConfigError, "empty macro name");
    assertThrows(() => x("${host"), ConfigError, "truncated macro reference");
    assertThrows(() => x("${{1} = {1}?{a}}"), ConfigError, "expected");
    assertThrows(() => x("${host!x}"), ConfigError, "unknown operator");
  });
  await t.step("loops are errors, not hangs", () => {
    const loop = (n: string) =>
      ({ a: "$b", b: "x${c}", c: "${a?y}", self: "$self" } as Record<string, string>)[n];
    assertThrows(() => expand("$a", loop), ConfigError, "expansion loop: a -> b -> c -> a");
    assertThrows(() => expand("$self", loop), ConfigError, "loop");
    assertThrows(() => expand("$self", loop, { stack: ["self"] }), ConfigError, "loop");
  });
  await t.step("the same name twice side by side is not a loop", () => {
    assertEquals(x("$host $host ${host}"), "h.example.com h.example.com h.example.com");
  });
});

Deno.test("referencedNames", () => {
  assertEquals(referencedNames("$a ${b?x} $(c) $$d ${{$e} == {1}}"), ["a", "b", "c", "e"]);
});
