import { assertEquals } from "../../tests/helpers/assert.ts";
import { applyMechFilter, type MechFilter, parseMechFilter } from "./mech_filter.ts";

const filter = (...items: string[]): MechFilter => {
  const f = parseMechFilter(items);
  if ("error" in f) throw new Error(f.error);
  return f;
};

const OFFERED = ["PLAIN", "LOGIN", "CRAM-MD5", "EXTERNAL", "GSSAPI"];

Deno.test("smtpd_sasl_mechanism_filter", async (t) => {
  await t.step("Postfix's default drops EXTERNAL and keeps the rest", () => {
    assertEquals(applyMechFilter(filter("!external", "static:rest"), OFFERED), [
      "PLAIN",
      "LOGIN",
      "CRAM-MD5",
      "GSSAPI",
    ]);
  });
  await t.step("names keep only those, in the backend's order and spelling", () => {
    assertEquals(applyMechFilter(filter("login", "Plain"), OFFERED), ["PLAIN", "LOGIN"]);
  });
  await t.step("the first matching item decides", () => {
    assertEquals(applyMechFilter(filter("static:all", "!plain"), OFFERED), OFFERED);
    assertEquals(applyMechFilter(filter("!plain", "plain"), OFFERED), []);
    assertEquals(applyMechFilter(filter("!external", "!gssapi", "static:rest"), OFFERED), [
      "PLAIN",
      "LOGIN",
      "CRAM-MD5",
    ]);
  });
  await t.step("!static: drops everything; an empty value filters nothing", () => {
    assertEquals(applyMechFilter(filter("!static:x"), OFFERED), []);
    assertEquals(applyMechFilter(filter(), OFFERED), OFFERED);
  });
  await t.step("tables other than static:, files and junk are refused", () => {
    for (const item of ["hash:/etc/postfix/mechs", "!/etc/postfix/mechs", "/x", "pl ain", "a=b"]) {
      const f = parseMechFilter([item]);
      assertEquals("error" in f, true, item);
    }
  });
});
