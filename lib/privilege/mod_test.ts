import { assert, assertEquals, assertThrows } from "../../tests/helpers/assert.ts";
import { ensureDir } from "../queue/layout.ts";
import {
  ancestors,
  blockedAt,
  checkMailOwner,
  classBits,
  MailOwnerError,
  openNoFollow,
  unsafeAncestor,
} from "./mod.ts";

const me = { uid: Deno.uid()!, gid: Deno.gid()! };

Deno.test("privilege: permission arithmetic", async (t) => {
  await t.step("the owner, group or other bits apply, root gets all", () => {
    const p = { uid: 10, gid: 20, mode: 0o750 };
    assertEquals(classBits(p, { uid: 10, gid: 99 }), 7);
    assertEquals(classBits(p, { uid: 11, gid: 20 }), 5);
    assertEquals(classBits(p, { uid: 11, gid: 21 }), 0);
    assertEquals(classBits(p, { uid: 0, gid: 0 }), 7);
  });
  await t.step("ancestors from the root down", () => {
    assertEquals(ancestors("/a/b/c"), ["/", "/a", "/a/b", "/a/b/c"]);
  });
  await t.step("a mail owner with uid or gid 0 is refused", () => {
    const base = { name: "x", home: "/" };
    assertThrows(() => checkMailOwner({ ...base, uid: 0, gid: 5 }), MailOwnerError, "user ID 0");
    assertThrows(() => checkMailOwner({ ...base, uid: 5, gid: 0 }), MailOwnerError, "group ID 0");
    checkMailOwner({ ...base, uid: 5, gid: 5 });
  });
});

Deno.test("privilege: reachability and safe folders", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "pw-priv-" });
  try {
    await Deno.mkdir(`${dir}/closed/q`, { recursive: true });
    await Deno.chmod(dir, 0o755);
    await Deno.chmod(`${dir}/closed`, 0o700);
    await t.step("a folder closed to a user blocks everything below it", async () => {
      const stranger = { uid: 4242, gid: 4242 };
      if (me.uid === 0 || me.uid !== 4242) {
        assertEquals(await blockedAt(`${dir}/closed/q`, stranger), `${dir}/closed`);
      }
      assertEquals(await blockedAt(`${dir}/closed/q`, me), null, "its owner passes");
      assertEquals(await blockedAt(`${dir}/open/not/yet`, stranger), null);
    });
    await t.step("a group- or world-writable parent is unsafe unless sticky", async () => {
      await Deno.mkdir(`${dir}/ww/q`, { recursive: true });
      await Deno.chmod(`${dir}/ww`, 0o777);
      assertEquals(await unsafeAncestor(`${dir}/ww/q`, me.uid), `${dir}/ww`);
      await Deno.chmod(`${dir}/ww`, 0o1777);
      assertEquals(await unsafeAncestor(`${dir}/ww/q`, me.uid), null, "sticky like /tmp");
      assertEquals(await unsafeAncestor(`${dir}/closed/q`, me.uid), null);
    });
    await t.step("ensureDir refuses a link where a folder belongs", async () => {
      await Deno.symlink("/etc", `${dir}/link`);
      await ensureDir(`${dir}/made`, { ...me, mode: 0o711 });
      assertEquals((await Deno.stat(`${dir}/made`)).mode! & 0o7777, 0o711);
      let err = "";
      try {
        await ensureDir(`${dir}/link`, { ...me, mode: 0o700 });
      } catch (e) {
        err = (e as Error).message;
      }
      assert(err.includes("symbolic link"), err);
      assertEquals((await Deno.lstat("/etc")).mode! & 0o7777, 0o755, "the target is untouched");
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("privilege: openNoFollow", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "pw-nofollow-" });
  try {
    const target = `${dir}/target`;
    await Deno.writeTextFile(target, "secret\n", { mode: 0o644 });
    await t.step("a symbolic link is not followed, its target untouched", async () => {
      await Deno.symlink(target, `${dir}/log`);
      assertThrows(
        () => openNoFollow(`${dir}/log`, { mode: 0o600, ...me }),
        Error,
        "symbolic link",
      );
      assertEquals(await Deno.readTextFile(target), "secret\n");
      assertEquals((await Deno.stat(target)).mode! & 0o777, 0o644);
    });
    await t.step("a hard link is refused", async () => {
      await Deno.link(target, `${dir}/hard`);
      assertThrows(() => openNoFollow(`${dir}/hard`, { mode: 0o600, ...me }), Error, "hard links");
      assertEquals(await Deno.readTextFile(target), "secret\n");
    });
    await t.step("a FIFO is refused without blocking", async () => {
      const mk = await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
      assert(mk.success);
      assertThrows(() => openNoFollow(`${dir}/fifo`, { mode: 0o600, ...me }), Error);
    });
    await t.step("a new file is created 0600 and appended to", async () => {
      const f = openNoFollow(`${dir}/maillog`, { mode: 0o600, ...me });
      f.write(new TextEncoder().encode("one\n"));
      f.close();
      const g = openNoFollow(`${dir}/maillog`, { mode: 0o600, ...me });
      g.write(new TextEncoder().encode("two\n"));
      g.close();
      assertEquals(await Deno.readTextFile(`${dir}/maillog`), "one\ntwo\n");
      assertEquals((await Deno.stat(`${dir}/maillog`)).mode! & 0o777, 0o600);
    });
    await t.step("a world-readable log is made 0600", async () => {
      await Deno.writeTextFile(`${dir}/old`, "x\n", { mode: 0o644 });
      await Deno.chmod(`${dir}/old`, 0o644);
      openNoFollow(`${dir}/old`, { mode: 0o600, ...me }).close();
      assertEquals((await Deno.stat(`${dir}/old`)).mode! & 0o777, 0o600);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("privilege: openNoFollow refuses a link under path-scoped permissions too", async () => {
  // Deno resolves links before opening when permissions are scoped to paths
  // (and then ignores O_NOFOLLOW): master runs that way.
  const dir = await Deno.makeTempDir({ prefix: "pw-nofollow-scoped-" });
  try {
    await Deno.writeTextFile(`${dir}/victim`, "secret\n");
    await Deno.symlink(`${dir}/victim`, `${dir}/log`);
    const mod = new URL("./mod.ts", import.meta.url).href;
    const script = `import { openNoFollow } from "${mod}";
      try { openNoFollow("${dir}/log", { mode: 0o600, uid: ${me.uid}, gid: ${me.gid} }).write(
        new TextEncoder().encode("pwned\\n")); console.log("opened"); }
      catch (e) { console.log("refused: " + e.message); }`;
    await Deno.writeTextFile(`${dir}/probe.ts`, script);
    const code = new URL("../../", import.meta.url).pathname;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-config",
        `--allow-read=${code},${dir}/log,${dir}/probe.ts`,
        `--allow-write=${dir}/log`,
        `${dir}/probe.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert(text.includes("refused: ") && text.includes("symbolic link"), text);
    assertEquals(await Deno.readTextFile(`${dir}/victim`), "secret\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
