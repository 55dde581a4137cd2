import { assertEquals } from "../../tests/helpers/assert.ts";
import { Deadlines } from "./deadlines.ts";

Deno.test("Deadlines", async (t) => {
  await t.step("fires what is due, not what is cancelled or later", () => {
    let now = 1000;
    const d = new Deadlines(60_000, () => now);
    const fired: string[] = [];
    d.add(100, () => fired.push("a"));
    const cancelB = d.add(100, () => fired.push("b"));
    d.add(500, () => fired.push("c"));
    cancelB();
    now = 1100;
    d.sweep();
    assertEquals(fired, ["a"]);
    assertEquals(d.size, 1);
    now = 1500;
    d.sweep();
    assertEquals(fired, ["a", "c"]);
    assertEquals(d.size, 0); // and the timer is stopped: the test's op sanitizer checks it
  });
  await t.step("the real timer fires", async () => {
    const d = new Deadlines(10);
    await new Promise<void>((resolve) => d.add(20, resolve));
    assertEquals(d.size, 0);
  });
});
