/** SmtpError and enhanced status code helpers. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import {
  enhancedClass,
  isEnhancedCode,
  matchEnhancedClass,
  replyClass,
  SmtpError,
} from "./status.ts";

Deno.test("SmtpError", async (t) => {
  await t.step("permanent for 5XX only", () => {
    const e = new SmtpError(550, "5.1.1", "User unknown");
    assertEquals([e.name, e.code, e.enhanced, e.message, e.permanent], [
      "SmtpError",
      550,
      "5.1.1",
      "User unknown",
      true,
    ]);
    assertEquals(new SmtpError(451, "4.3.0", "try later").permanent, false);
  });
  await t.step("reply() is the wire form", () => {
    assertEquals(
      new SmtpError(554, "5.7.1", "Relay access denied").reply(),
      "554 5.7.1 Relay access denied\r\n",
    );
  });
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
