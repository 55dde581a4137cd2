/** Tests for the passwd parser and the re-reading lookup. */
import { assertEquals } from "../../tests/helpers/assert.ts";
import { parsePasswd, PasswdFile } from "./mod.ts";

Deno.test("parsePasswd", () => {
  assertEquals(
    parsePasswd(
      "root:x:0:0:root:/root:/bin/bash\n" +
        "# comment\n" +
        "+nisuser::::::\n" +
        "broken:x:abc:1:::\n" +
        "short:x:5:5\n" +
        "joe:x:1000:100:Joe User,,,:/home/joe:/bin/sh\n",
    ),
    [
      { name: "root", uid: 0, gid: 0, home: "/root", shell: "/bin/bash" },
      { name: "joe", uid: 1000, gid: 100, home: "/home/joe", shell: "/bin/sh" },
    ],
  );
});

Deno.test("PasswdFile", async (t) => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/passwd`;
  try {
    await t.step("first entry per uid wins, as with getpwuid", async () => {
      await Deno.writeTextFile(path, "a:x:7:7::/:/bin/sh\nb:x:7:7::/:/bin/sh\n");
      const p = new PasswdFile(path);
      assertEquals(p.byUid(7)?.name, "a");
      assertEquals(p.byName("b")?.uid, 7);
      assertEquals(p.byUid(8), null);
    });
    await t.step("a changed file is read again", async () => {
      const p = new PasswdFile(path);
      assertEquals(p.byUid(8), null);
      await Deno.writeTextFile(path, "a:x:7:7::/:/bin/sh\nc:x:8:8:more text:/:/bin/sh\n");
      assertEquals(p.byUid(8)?.name, "c");
    });
    await t.step("an unreadable file gives nothing and says why", () => {
      const p = new PasswdFile(`${dir}/missing`);
      assertEquals(p.byUid(0), null);
      assertEquals(p.error?.name, "NotFound");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
