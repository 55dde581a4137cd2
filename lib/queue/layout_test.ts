import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { checkQueue, QUEUE_LAYOUT, setupQueue } from "./layout.ts";

const me = { uid: Deno.uid()!, gid: Deno.gid()! };
const owners = { root: me, mail: me };

Deno.test("queue layout", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "pw-layout-" });
  const q = `${dir}/var`;
  try {
    await t.step("setupQueue creates every folder with its mode; check finds nothing", async () => {
      await setupQueue(q, owners);
      for (const e of QUEUE_LAYOUT) {
        const st = await Deno.lstat(e.path ? `${q}/${e.path}` : q);
        assert(st.isDirectory, e.path);
        assertEquals((st.mode ?? 0) & 0o7777, e.mode, e.path);
      }
      assertEquals((await Deno.stat(`${q}/maildrop`)).mode! & 0o7777, 0o1733);
      assertEquals(await checkQueue(q, owners), []);
    });
    await t.step("check names a wrong mode; setup repairs it", async () => {
      await Deno.chmod(`${q}/active`, 0o755);
      assertEquals(await checkQueue(q, owners), [`${q}/active: mode 755, should be 700`]);
      await setupQueue(q, owners);
      assertEquals(await checkQueue(q, owners), []);
    });
    await t.step(
      "a link where a folder belongs is reported and refused, never followed",
      async () => {
        const outside = `${dir}/outside`;
        await Deno.mkdir(outside, { mode: 0o755 });
        await Deno.chmod(outside, 0o755);
        await Deno.remove(`${q}/pid`);
        await Deno.symlink(outside, `${q}/pid`);
        assertEquals(await checkQueue(q, owners), [
          `${q}/pid is a symbolic link (must be a directory)`,
        ]);
        let err = "";
        try {
          await setupQueue(q, owners);
        } catch (e) {
          err = (e as Error).message;
        }
        assert(err.includes(`${q}/pid is a symbolic link`), err);
        assertEquals((await Deno.stat(outside)).mode! & 0o7777, 0o755, "target untouched");
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
