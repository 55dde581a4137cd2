/** Enhanced status code helpers, and lib/outcome's permanence rules. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { enhancedClass, isEnhancedCode, matchEnhancedClass, replyClass } from "./status.ts";
import { failureStatus, isPermanent } from "../outcome/mod.ts";

Deno.test("outcomes: permanence from the reply or enhanced code, never from text", () => {
  assertEquals([isPermanent({ code: 550 }), isPermanent({ code: 451 })], [true, false]);
  assertEquals([failureStatus("5.1.1"), failureStatus("4.4.1"), failureStatus("x")], [
    "bounced",
    "deferred",
    "deferred",
  ]);
});

Deno.test("enhanced status codes", async (t) => {
  await t.step("isEnhancedCode", () => {
    for (const ok of ["2.0.0", "4.7.1", "5.1.10", "5.123.999"]) {
      assertEquals(isEnhancedCode(ok), true, ok);
    }
    for (const bad of ["3.0.0", "5.1", "5.1.1.1", "5.1000.0", "x.1.1", " 5.1.1", ""]) {
      assertEquals(isEnhancedCode(bad), false, bad);
    }
  });
  await t.step("classes", () => {
    assertEquals([replyClass(354), enhancedClass("4.2.2"), enhancedClass("junk")], [3, 4, 0]);
  });
  await t.step("matchEnhancedClass follows the reply code", () => {
    assertEquals(matchEnhancedClass("5.1.1", 450), "4.1.1");
    assertEquals(matchEnhancedClass("4.7.1", 554), "5.7.1");
    assertEquals(matchEnhancedClass("2.0.0", 250), "2.0.0");
    assertEquals(matchEnhancedClass("5.1.1", 354), "5.1.1");
    assertEquals(matchEnhancedClass("junk", 550), "junk");
  });
});
