/** Unit tests for message.ts: header fields and body bytes, from chunks cut anywhere. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { latin1 } from "./canon.ts";
import { MessageReader } from "./message.ts";
import { bytes } from "./testing.ts";

/** The field names and the body of a message fed in chunks of `size` bytes. */
function read(message: string, size = Infinity, maxHeaderBytes?: number) {
  const reader = new MessageReader(maxHeaderBytes);
  const all = bytes(message);
  let body = "";
  for (let i = 0; i < all.length; i += Math.min(size, all.length)) {
    const b = reader.push(all.subarray(i, i + size));
    if (b) body += latin1(b);
  }
  body += latin1(reader.end());
  return { names: reader.fields!.map((f) => f.name), body, truncated: reader.truncated };
}

Deno.test("MessageReader", async (t) => {
  await t.step("the empty line is neither header nor body, whatever the chunk size", () => {
    for (const size of [1, 2, 3, 7, Infinity]) {
      assertEquals(read("A: 1\r\nB: 2\r\n \r\n\r\n\r\nbody\r\n", size), {
        names: ["A", "B"],
        body: "\r\nbody\r\n",
        truncated: false,
      });
      assertEquals(read("A: 1\nB: 2\n\nbody\n", size).body, "body\n");
    }
  });
  await t.step("no empty line: all header, no body", () => {
    assertEquals(read("A: 1\r\nB: 2\r\n"), { names: ["A", "B"], body: "", truncated: false });
    assertEquals(read("A: 1\r\nB: 2"), { names: ["A", "B"], body: "", truncated: false });
  });
  await t.step("a line that is not a header field starts the body (as Postfix's cleanup)", () => {
    assertEquals(read("A: 1\r\nnot a header\r\nB: 2\r\n").body, "not a header\r\nB: 2\r\n");
  });
  await t.step("a header section over the bound is marked truncated", () => {
    assertEquals(read(`A: 1\r\nB: ${"x".repeat(100)}\r\n\r\nbody`, 5, 50).truncated, true);
    assertEquals(read(`A: 1\r\nB: ${"x".repeat(10)}\r\n\r\nbody`, 5, 50).truncated, false);
  });
});
