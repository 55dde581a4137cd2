import { assertEquals } from "../../tests/helpers/assert.ts";
import { parentPath, resolvePath } from "./mod.ts";

Deno.test("resolvePath and parentPath agree with node:path", async () => {
  const path = await import("node:path");
  const cases = [
    ["/a/b/../c/./d/"],
    ["/"],
    ["//a//b"],
    ["/a", "b", "../c"],
    ["/etc/postfix", "../var"],
    ["/etc/postfix", "/var/spool/postfix"],
    ["/a/b", ""],
    ["/..", "x"],
    ["rel/x"],
    ["rel", "../.."],
  ];
  for (const c of cases) assertEquals(resolvePath(...c), path.resolve(...c), c.join(" "));
  for (const p of ["/", "/a", "/a/b", "/a/b/c"]) {
    assertEquals(parentPath(p), path.dirname(p), p);
  }
});
