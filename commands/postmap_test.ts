import { assert, assertEquals } from "../tests/helpers/assert.ts";
import { newaliases } from "./newaliases.ts";
import { postalias } from "./postalias.ts";
import { postmap, type PostmapIo } from "./postmap.ts";

function io(stdin = "") {
  const out: string[] = [];
  const err: string[] = [];
  const x: PostmapIo = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    stdin: () => Promise.resolve(stdin),
    env: {},
  };
  return { io: x, out, err };
}

Deno.test("postmap", async (t) => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/main.cf`, "compatibility_level = 3.6\n");
  const src = `${dir}/virtual`;
  await Deno.writeTextFile(src, "User@Example.com one\nuser@example.com two\nother@x  v  w\nbad\n");
  const c = ["-c", dir];

  await t.step("builds the default type with Postfix's warnings", async () => {
    const r = io();
    assertEquals(await postmap([...c, src], r.io), 0);
    assertEquals(r.err, [
      `postmap: warning: ${src}, line 2: duplicate entry: "user@example.com"`,
      `postmap: warning: ${src}, line 4: expected format: key whitespace value`,
    ]);
    const st = await Deno.stat(`${src}.hash.pwdb`);
    assert(st.isFile);
  });
  await t.step("-q key: the value, exit 0; a miss exits 1 silently", async () => {
    const r = io();
    assertEquals(await postmap([...c, "-q", "USER@example.com", `hash:${src}`], r.io), 0);
    assertEquals(r.out, ["one"]);
    const miss = io();
    assertEquals(await postmap([...c, "-q", "nobody", `hash:${src}`], miss.io), 1);
    assertEquals([miss.out, miss.err], [[], []]);
  });
  await t.step("-q - prints found keys only, first table that has it", async () => {
    const r = io("other@x\nmissing\nUSER@EXAMPLE.COM\nz\n");
    assertEquals(
      await postmap([...c, "-q", "-", `hash:${src}`, "inline:{z=from-inline}"], r.io),
      0,
    );
    assertEquals(r.out, ["other@x\tv  w", "USER@EXAMPLE.COM\tone", "z\tfrom-inline"]);
    const none = io("a\nb\n");
    assertEquals(await postmap([...c, "-q", "-", `hash:${src}`], none.io), 1);
  });
  await t.step("-s lists, -d deletes, -i adds", async () => {
    const s = io();
    await postmap([...c, "-s", `hash:${src}`], s.io);
    assertEquals(s.out, ["user@example.com\tone", "other@x\tv  w"]);
    assertEquals(await postmap([...c, "-d", "OTHER@x", `hash:${src}`], io().io), 0);
    assertEquals(await postmap([...c, "-d", "other@x", `hash:${src}`], io().io), 1);
    const add = io("new@x  added\nuser@example.com dup\n");
    assertEquals(await postmap([...c, "-i", `hash:${src}`], add.io), 0);
    assertEquals(add.err, ['postmap: warning: stdin, line 2: duplicate entry: "user@example.com"']);
    const s2 = io();
    await postmap([...c, "-s", `hash:${src}`], s2.io);
    assertEquals(s2.out, ["user@example.com\tone", "new@x\tadded"]);
  });
  await t.step("-f keeps case, -r keeps the last value", async () => {
    assertEquals(await postmap([...c, "-f", "-r", `cdb:${src}`], io().io), 0);
    const r = io("User@Example.com\nuser@example.com\nUSER@EXAMPLE.COM\n");
    await postmap([...c, "-f", "-q", "-", `cdb:${src}`], r.io);
    assertEquals(r.out, ["User@Example.com\tone", "user@example.com\ttwo"]);
  });
  await t.step(
    "errors: unsupported option, texthash build, missing index, query error",
    async () => {
      const cases: [string[], string][] = [
        [["-F", src], "postmap: fatal: option -F is not supported by Postwarden"],
        [
          ["-x", src],
          "postmap: fatal: invalid option -- 'x'; usage: postmap [-Nfinoprsvw] [-c config_dir] [-d key] [-q key] [map_type:]file...",
        ],
        [
          [`texthash:${src}`],
          "postmap: fatal: unsupported dictionary type: texthash does not support bulk-mode creation.",
        ],
        [
          ["-q", "k", `lmdb:${src}`],
          `postmap: fatal: open database ${src}.lmdb.pwdb: No such file or directory; run "postmap lmdb:${src}" to build it`,
        ],
        [
          ["-q", "k", "fail:x"],
          "postmap: fatal: table fail:x: query error: fail:x: table lookup failed",
        ],
        [["-q", "k", "-s", src], "postmap: fatal: specify only one of -s -q or -d"],
        [[`hash:${dir}/none`], `postmap: fatal: open ${dir}/none: No such file or directory`],
        [[`proxy:hash:${src}`], "postmap: fatal: can't create maps via the proxy service"],
      ];
      for (const [args, msg] of cases) {
        const r = io();
        assertEquals(await postmap([...c, ...args], r.io), 1, args.join(" "));
        assertEquals(r.err, [msg]);
      }
    },
  );
  await t.step("empty results are printed with Postfix's warning", async () => {
    const r = io();
    assertEquals(await postmap([...c, "-q", "k", "static:{}"], r.io), 0);
    assertEquals(r.out, [""]);
    assertEquals(r.err, [
      "postmap: warning: table static:{}: key k: empty string result is not allowed",
      "postmap: warning: table static:{} should return NO RESULT in case of NOT FOUND",
    ]);
  });
  await t.step("the index keeps the source's group/other read bits unless -p", async () => {
    await Deno.chmod(src, 0o640);
    await postmap([...c, `btree:${src}`], io().io);
    assertEquals((await Deno.stat(`${src}.btree.pwdb`)).mode! & 0o777, 0o640);
    await postmap([...c, "-p", `btree:${src}`], io().io);
    assertEquals((await Deno.stat(`${src}.btree.pwdb`)).mode! & 0o777, 0o644);
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("postalias and newaliases", async (t) => {
  const dir = await Deno.makeTempDir();
  const aliases = `${dir}/aliases`;
  await Deno.writeTextFile(
    `${dir}/main.cf`,
    `alias_database = hash:${aliases}\nmyhostname = mx.example\n`,
  );
  await Deno.writeTextFile(aliases, "Root: a,b\n   c\npostmaster: root\nbad line\n");
  await t.step("newaliases builds every alias_database table", async () => {
    const r = io();
    assertEquals(await newaliases(["-c", dir], r.io), 0);
    assertEquals(r.err, [`postalias: warning: ${aliases}, line 4: need name:value pair`]);
  });
  await t.step("postalias -q - prints key:<TAB>value; the signatures are there", async () => {
    const r = io("root\npostmaster\n@\nnone\n");
    assertEquals(await postalias(["-c", dir, "-q", "-", `hash:${aliases}`], r.io), 0);
    assertEquals(r.out, ["root:\ta, b c", "postmaster:\troot", "@:\t@"]);
    const s = io();
    await postalias(["-c", dir, "-s", `hash:${aliases}`], s.io);
    assert(s.out.includes("YP_MASTER_NAME:\tmx.example"), s.out.join("\n"));
  });
  await Deno.remove(dir, { recursive: true });
});
