import { assertEquals, assertRejects } from "../../tests/helpers/assert.ts";
import { nisBackend } from "./map_nis.ts";
import { unixBackend } from "./map_unix.ts";
import {
  accessAddressFind,
  addressFind,
  DictError,
  domainFind,
  Maps,
  splitMapList,
} from "./mod.ts";

Deno.test("splitMapList keeps {...} groups whole", () => {
  assertEquals(splitMapList(" inline:{a=b, c=d},hash:/x  regexp:/y "), [
    "inline:{a=b, c=d}",
    "hash:/x",
    "regexp:/y",
  ]);
  assertEquals(splitMapList(""), []);
});

Deno.test("inline: folds keys, a later duplicate wins, rejects a bad item", async () => {
  const m = await Maps.open("t", "inline:{ A@Example.com=x, a@example.com=y, { k = v w } }");
  assertEquals(await m.find("a@EXAMPLE.com"), "y");
  assertEquals(await m.find("k"), "v w");
  await assertRejects(() => Maps.open("t", "inline:{novalue}"), DictError);
  await assertRejects(() => Maps.open("t", "inline:{{a b=value}}"), DictError, "missing '='");
  await assertRejects(() => Maps.open("t", "nosuchtype:/x"), DictError, "not supported");
});

Deno.test("addressFind follows mail_addr_find", async (t) => {
  const isLocal = (d: string) => d === "local.example";
  const opts = { delimiters: "+", isLocal };
  await t.step("full address first, then without extension", async () => {
    const m = await Maps.open("t", "inline:{joe@d.example=full, @d.example=catchall}");
    assertEquals(await addressFind(m, "joe+x@d.example", opts), { value: "full", extension: "+x" });
    assertEquals(await addressFind(m, "ann@d.example", opts), {
      value: "catchall",
      extension: "",
    });
  });
  await t.step("bare user only for local domains", async () => {
    const m = await Maps.open("t", "inline:{joe=bare}");
    assertEquals(await addressFind(m, "joe+x@local.example", opts), {
      value: "bare",
      extension: "+x",
    });
    assertEquals(await addressFind(m, "joe@other.example", opts), undefined);
  });
  await t.step("a failing table is an error, not a miss", async () => {
    const m = await Maps.open("t", "fail:x");
    await assertRejects(() => addressFind(m, "joe@d.example", opts), DictError);
  });
});

Deno.test("domainFind walks parents in Postfix's two styles", async () => {
  const m = await Maps.open("t", "inline:{.example.com=dot, example.org=parent}");
  assertEquals(await domainFind(m, "a.b.example.com"), { value: "dot", key: ".example.com" });
  assertEquals(await domainFind(m, "example.com"), undefined);
  assertEquals(await domainFind(m, "a.example.org"), undefined);
  assertEquals(await domainFind(m, "a.example.org", { parentMatches: true }), {
    value: "parent",
    key: "example.org",
  });
});

Deno.test("accessAddressFind: address, domain, user@", async () => {
  const m = await Maps.open("t", "inline:{joe@=user, example.com=domain}");
  assertEquals(
    (await accessAddressFind(m, "joe+x@other.example", { delimiters: "+" }))?.key,
    "joe@",
  );
  assertEquals((await accessAddressFind(m, "ann@example.com"))?.key, "example.com");
});

Deno.test("unix:passwd.byname answers the account line, folded key", async () => {
  const m = await Maps.open("t", "proxy:unix:passwd.byname");
  const root = await m.find("ROOT");
  assertEquals(root?.startsWith("root:"), true);
  assertEquals(await m.find("no-such-user-here"), undefined);
  await assertRejects(() => Maps.open("t", "unix:shadow.byname"), DictError, "unknown table");
});

Deno.test("nis: without a NIS domain finds nothing, with a warning, as Postfix", async () => {
  const file = await Deno.makeTempFile();
  const ctx = { fold: true, utf8: true, env: () => undefined, context: "" };
  try {
    const warnings: string[] = [];
    await Deno.writeTextFile(file, "(none)\n");
    const d = await nisBackend(file).open("mail.aliases", {
      ...ctx,
      warn: (w) => warnings.push(w),
    });
    assertEquals(await d.lookup("root"), undefined);
    assertEquals(warnings, ["dict_nis_init: NIS domain name not set - NIS lookups disabled"]);
    await Deno.writeTextFile(file, "example.lan\n");
    await assertRejects(
      () => nisBackend(file).open("mail.aliases", { ...ctx, warn: () => {} }),
      DictError,
      "NIS lookups are not supported",
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("unix: a changed passwd file is read again, at most once a second", async () => {
  const file = await Deno.makeTempFile();
  let now = 10_000;
  try {
    await Deno.writeTextFile(file, "ann:x:1000:1000::/home/ann:/bin/sh\n");
    const d = await unixBackend({ "passwd.byname": file }, () => now).open("passwd.byname", {
      fold: true,
      utf8: true,
      warn: () => {},
      env: () => undefined,
      context: "",
    });
    assertEquals(await d.lookup("bob"), undefined);
    await Deno.writeTextFile(
      file,
      "ann:x:1000:1000::/home/ann:/bin/sh\nbob:x:1001:1001::/b:/bin/sh\n",
    );
    now += 500;
    assertEquals(await d.lookup("bob"), undefined, "within the second: not looked at");
    now += 600;
    assertEquals((await d.lookup("bob"))?.startsWith("bob:"), true);
  } finally {
    await Deno.remove(file);
  }
});
