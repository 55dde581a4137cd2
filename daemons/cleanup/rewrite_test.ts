import { assert, assertEquals, assertRejects, assertThrows } from "../../tests/helpers/assert.ts";
import { DictError } from "../../lib/maps/mod.ts";
import { failingDict, fixedDict, mapsOf, regexpDict } from "./_test_tables.ts";
import {
  ClassesError,
  headerKind,
  isMimeHeader,
  mapOne,
  masquerade,
  parseClasses,
  rewriteHeaderAddresses,
} from "./rewrite.ts";

Deno.test("canonical mapping (cleanup_map11)", async (t) => {
  await t.step("maps an address and maps the result again until it maps to itself", async () => {
    const maps = mapsOf(
      "canonical_maps",
      fixedDict({ "a@x.example": "b@x.example", "b@x.example": "c@y.example" }),
    );
    assertEquals(await mapOne(maps, "a@x.example"), "c@y.example");
    assertEquals(await mapOne(maps, "other@x.example"), "other@x.example");
  });
  await t.step("@domain result keeps the user, without the unmatched extension", async () => {
    const maps = mapsOf("canonical_maps", fixedDict({ "@old.example": "@new.example" }));
    assertEquals(await mapOne(maps, "joe@old.example"), "joe@new.example");
    assertEquals(
      await mapOne(maps, "joe+list@old.example", { delimiters: "+", propagate: true }),
      "joe+list@new.example",
      "an @domain key matches the whole local part, extension included",
    );
  });
  await t.step("propagates an unmatched extension only when asked", async () => {
    const maps = mapsOf("canonical_maps", fixedDict({ "joe@x.example": "joseph@y.example" }));
    assertEquals(
      await mapOne(maps, "joe+foo@x.example", { delimiters: "+", propagate: true }),
      "joseph+foo@y.example",
    );
    assertEquals(
      await mapOne(maps, "joe+foo@x.example", { delimiters: "+", propagate: false }),
      "joseph@y.example",
    );
  });
  await t.step("bare user key only for local domains", async () => {
    const maps = mapsOf("canonical_maps", fixedDict({ "joe": "joseph@y.example" }));
    const isLocal = (d: string) => d === "here.example";
    assertEquals(await mapOne(maps, "joe@here.example", { isLocal }), "joseph@y.example");
    assertEquals(await mapOne(maps, "joe@there.example", { isLocal }), "joe@there.example");
  });
  await t.step("multi-valued entry: first address, with Postfix's warning", async () => {
    const warnings: string[] = [];
    const maps = mapsOf("canonical_maps", fixedDict({ "a@x.example": "b@x.example, c@x.example" }));
    assertEquals(
      await mapOne(maps, "a@x.example", { warn: (m) => warnings.push(m) }),
      "b@x.example",
    );
    assertEquals(warnings, ["multi-valued canonical_maps entry for a@x.example"]);
  });
  await t.step("a loop stops after 10 rounds with a warning", async () => {
    const warnings: string[] = [];
    const maps = mapsOf(
      "canonical_maps",
      fixedDict({ "a@x.example": "b@x.example", "b@x.example": "a@x.example" }),
    );
    await mapOne(maps, "a@x.example", { warn: (m) => warnings.push(m) });
    assertEquals(warnings.length, 1);
    assertEquals(warnings[0].startsWith("unreasonable canonical_maps map nesting for "), true);
  });
  await t.step("pattern tables get the full address only", async () => {
    const re = regexpDict([[/^(.*)@sub\.example$/, "$1@example"]]);
    const maps = mapsOf("canonical_maps", re);
    assertEquals(await mapOne(maps, "u+x@sub.example", { delimiters: "+" }), "u+x@example");
    assertEquals(re.keys, ["u+x@sub.example", "u+x@example"]);
  });
  await t.step("a table that cannot answer is an error, not 'not found'", async () => {
    await assertRejects(() => mapOne(mapsOf("canonical_maps", failingDict()), "a@x"), DictError);
  });
  await t.step("an empty list looks nothing up", async () => {
    assertEquals(await mapOne(mapsOf("canonical_maps"), "a@x"), "a@x");
  });
});

Deno.test("masquerading", async (t) => {
  const m = (domains: string, exceptions = "") => ({
    domains: domains.split(/\s+/).filter(Boolean),
    exceptions: new Set(exceptions.split(/\s+/).filter(Boolean)),
  });
  await t.step("strips subdomains below a listed domain", () => {
    assertEquals(masquerade("joe@host.sub.example.com", m("example.com")), "joe@example.com");
    assertEquals(masquerade("joe@example.com", m("example.com")), "joe@example.com");
    assertEquals(masquerade("joe@notexample.com", m("example.com")), "joe@notexample.com");
    assertEquals(masquerade("joe", m("example.com")), "joe");
  });
  await t.step("order matters: the first matching domain decides, ! keeps", () => {
    assertEquals(
      masquerade("joe@a.sub.example.com", m("sub.example.com example.com")),
      "joe@sub.example.com",
    );
    assertEquals(
      masquerade("joe@a.sub.example.com", m("!sub.example.com example.com")),
      "joe@a.sub.example.com",
    );
    assertEquals(
      masquerade("joe@b.example.com", m("!sub.example.com example.com")),
      "joe@example.com",
    );
  });
  await t.step("exceptions by user name (case-insensitive)", () => {
    assertEquals(masquerade("Root@h.example.com", m("example.com", "root")), "Root@h.example.com");
  });
  await t.step("case-insensitive domain match keeps the listed spelling", () => {
    assertEquals(masquerade("joe@H.Example.COM", m("example.com")), "joe@example.com");
  });
});

Deno.test("address classes and header kinds", async (t) => {
  await t.step("parses Postfix's class names", () => {
    assertEquals(parseClasses("masquerade_classes", ["envelope_sender", "header_recipient"]), {
      envelopeSender: true,
      envelopeRecipient: false,
      headerSender: false,
      headerRecipient: true,
    });
    assertThrows(() => parseClasses("canonical_classes", ["envelope"]), ClassesError, "envelope");
  });
  await t.step("header_opts: sender and recipient fields, MIME fields", () => {
    assertEquals(headerKind("From"), "sender");
    assertEquals(headerKind("reply-to"), "sender");
    assertEquals(headerKind("Resent-Reply-To"), "recipient");
    assertEquals(headerKind("CC"), "recipient");
    assertEquals(headerKind("Subject"), undefined);
    assertEquals(isMimeHeader("Content-Type"), true);
    assertEquals(isMimeHeader("MIME-Version"), true);
    assertEquals(isMimeHeader("Content-Length"), false);
  });
});

Deno.test("header address rewriting", async (t) => {
  const up = (a: string) =>
    Promise.resolve(
      a.includes("@") ? a.replace(/@old\.example$/, "@new.example") : a + "@q.example",
    );
  await t.step("rewrites each address and keeps display names and comments", async () => {
    assertEquals(
      await rewriteHeaderAddresses(
        '"Doe, J" <j@old.example>, k@old.example (Kay), m@other.example',
        up,
      ),
      '"Doe, J" <j@new.example>, k@new.example (Kay), m@other.example',
    );
  });
  await t.step("qualifies a bare user and handles groups", async () => {
    assertEquals(await rewriteHeaderAddresses("bob", up), "bob@q.example");
    assertEquals(
      await rewriteHeaderAddresses("team: a@old.example, b@x.example;, c", up),
      "team: a@new.example, b@x.example;, c@q.example",
    );
  });
  await t.step("undefined when nothing changes (the field is kept byte for byte)", async () => {
    assertEquals(await rewriteHeaderAddresses("A <a@x.example>", up), undefined);
    assertEquals(await rewriteHeaderAddresses("undisclosed-recipients:;", up), undefined);
  });
  await t.step("a rewritten address with special characters is quoted", async () => {
    const r = (a: string) => Promise.resolve(a === "a@x.example" ? "john doe@x.example" : a);
    assertEquals(await rewriteHeaderAddresses("<a@x.example>", r), '<"john doe"@x.example>');
  });
});

Deno.test("header address rewriting: hostile input", async (t) => {
  const fc = (await import("fast-check")).default;
  const same = (a: string) => Promise.resolve(a);
  await t.step("any text: never throws, an identity rewrite changes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.stringOf(fc.constantFrom(...'ab@.,;:<>()[]"\\ \t\r\n')),
        async (v: string) => {
          assertEquals(await rewriteHeaderAddresses(v, same), undefined);
        },
      ),
      { numRuns: 2000 },
    );
  });
  await t.step("long runs of specials stay fast", async () => {
    for (const unit of ["),", "(,", " ", "<", '"', "(", "a "]) {
      const v = unit.repeat(50_000);
      const t0 = performance.now();
      await rewriteHeaderAddresses(v, (a) => Promise.resolve(a + "x"));
      assert(performance.now() - t0 < 2000, `${JSON.stringify(unit)} took too long`);
    }
  });
});

Deno.test("headerKind: only the address fields, whatever the name", () => {
  for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
    assertEquals(headerKind(name), undefined, name);
  }
  assertEquals(headerKind("From"), "sender");
  assertEquals(headerKind(" resent-to "), "recipient");
});

Deno.test("parseClasses: a word named like an object key is a bad value", () => {
  for (const w of ["constructor", "__proto__", "toString"]) {
    assertThrows(() => parseClasses("canonical_classes", [w]), ClassesError);
  }
});
