import { assertEquals, assertThrows } from "../tests/helpers/assert.ts";
import { getopt, GetoptError } from "./_cli.ts";

Deno.test("getopt", async (t) => {
  await t.step("clusters, attached and separate arguments, operands", () => {
    assertEquals(getopt(["-nx", "-cDIR", "-d", "id1", "rest", "-x"], "c:d:nx"), {
      opts: [{ flag: "n" }, { flag: "x" }, { flag: "c", value: "DIR" }, {
        flag: "d",
        value: "id1",
      }],
      operands: ["rest", "-x"],
    });
  });
  await t.step("-- ends options; a lone - is an operand", () => {
    assertEquals(getopt(["-n", "--", "-x"], "nx").operands, ["-x"]);
    assertEquals(getopt(["-", "-n"], "n").operands, ["-", "-n"]);
  });
  await t.step("errors read like getopt(3)", () => {
    assertThrows(() => getopt(["-q"], "n"), GetoptError, "invalid option -- 'q'");
    assertThrows(() => getopt(["-c"], "c:"), GetoptError, "option requires an argument -- 'c'");
  });
});
