import { assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { parseArgs } from "./connections.ts";

Deno.test("bench --connections takes a bare count, as `--connections 10000`", () => {
  assertEquals(parseArgs(["10000"]), { counts: [10000], postfix: 300, hosting: "process" });
  assertEquals(parseArgs(["500", "--hosting", "worker", "--postfix", "0"]), {
    counts: [500],
    postfix: 0,
    hosting: "worker",
  });
  assertEquals(parseArgs(["--counts", "2000,10000"]).counts, [2000, 10000]);
});

Deno.test("bench --connections refuses what it cannot measure", () => {
  assertThrows(() => parseArgs(["--hosting", "thread"]), Error, "process or worker");
  assertThrows(() => parseArgs(["--counts", "0"]), Error, "bad --counts");
  assertThrows(() => parseArgs(["--postfix"]), Error, "needs a value");
  assertThrows(() => parseArgs(["10000", "20000"]), Error, "unknown option 20000");
});
