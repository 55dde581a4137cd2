/**
 * Differential test of postmap/postalias and the table types of lib/maps
 * against Postfix's own postmap/postalias (the oracle, see
 * _postmap_oracle.ts): one generated corpus with the hard cases (case,
 * duplicates, continuation lines, comments, malformed lines, quotes,
 * address extensions, white space in values, UTF-8, very long lines,
 * missing keys), as texthash, hash, btree, lmdb and cdb (when `postconf -m`
 * lists it), through inline, static, unionmap and pipemap, with -f, -r
 * and -w, with and without SMTPUTF8, and an aliases file through
 * postalias. For each case both print the same `-q -` output and exit
 * status, and the same warnings when building and querying.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { missingPeer } from "../helpers/peers.ts";
import { compareWithPostfix, haveOracle, type OracleCase } from "./_postmap_oracle.ts";

/** A small deterministic PRNG (mulberry32), so a failure can be reproduced. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The map-format corpus: source text and the keys to ask. */
function mapCorpus(seed: number, longKey = true): { source: string; keys: string[] } {
  const rnd = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const mixCase = (s: string) => [...s].map((c) => (rnd() < 0.3 ? c.toUpperCase() : c)).join("");
  const lines: string[] = ["  starts with a continuation line"];
  const keys: string[] = [];
  for (let i = 0; i < 160; i++) {
    const user = `user${i}`;
    const dom = `example${i % 7}.com`;
    const key = pick([
      `${user}@${dom}`,
      `${user}+ext${i}@${dom}`,
      `@${dom}${i}`,
      user,
      `${user}.${i}@sub.${dom}`,
    ]);
    const value = pick([
      `relay:[mx${i}.${dom}]:25`,
      `OK  with   inner   spaces`,
      `REJECT user ${i} is gone\t`,
      `dest${i}@Example.NET`,
      `smtp:[10.0.0.${i % 250}]`,
    ]);
    const written = mixCase(key);
    lines.push(`${written}${pick([" ", "\t", "  \t "])}${value}${pick(["", " ", "\t "])}`);
    keys.push(written, key.toUpperCase(), key.toLowerCase());
    if (key.includes("+")) keys.push(key.replace(/\+[^@]*/, ""));
    if (i % 9 === 0) lines.push(pick(["# a comment", "   # indented comment", "", "   ", "#"]));
    if (i % 13 === 0) {
      // continuation lines, with a comment and a blank line among them
      lines.push(`cont${i}@${dom} first part`);
      lines.push(`\tsecond part`);
      if (i % 2 === 0) lines.push(`# comment inside`);
      lines.push(`   third  part  `);
      keys.push(`cont${i}@${dom}`, `CONT${i}@${dom.toUpperCase()}`);
    }
    if (i % 11 === 0) {
      // a duplicate: same key in other case, other value
      lines.push(`${key.toUpperCase()} duplicate value ${i}`);
    }
    if (i % 17 === 0) {
      lines.push(pick([`novalue${i}`, `novalue${i}   `, `novalue${i}\t`]));
      keys.push(`novalue${i}`);
    }
    keys.push(`missing${i}@${dom}`, `nosuch${i}`);
  }
  lines.push(
    `"quoted key"@example.com quoted value`,
    `"unbalanced@example.com value`,
    `back\\ slash value`,
    `alias${1}: looks like an alias`,
    `crlf@example.com value with crlf\r`,
    `Jürgen@Example.DE umlaut`,
    `ÉMILE@example.fr accent`,
    `straße@example.de sharp s`,
    `用户@例子.中国 cjk`,
    `ΣΟΦΙΑ@example.gr greek`,
    // LMDB refuses keys over 511 bytes (MDB_BAD_VALSIZE); Postwarden has no such limit.
    longKey ? `${"k".repeat(1500)}@long.example long key` : `short@long.example long key`,
    `long@value.example ${"v".repeat(9000)}`,
    `last@example.com no newline at end`,
  );
  keys.push(
    `"quoted key"@example.com`,
    `quoted key@example.com`,
    `"unbalanced@example.com`,
    `back\\ slash`,
    `back slash`,
    `alias1:`,
    `alias1`,
    `crlf@example.com`,
    `jürgen@example.de`,
    `JÜRGEN@EXAMPLE.DE`,
    `émile@example.fr`,
    `ÉMILE@example.fr`,
    `strasse@example.de`,
    `STRASSE@example.de`,
    `straße@example.de`,
    `用户@例子.中国`,
    `σοφια@example.gr`,
    `${"K".repeat(1500)}@LONG.example`,
    `long@value.example`,
    `last@example.com`,
    ``,
    ` `,
    `starts`,
  );
  return { source: lines.join("\n"), keys };
}

const ALIASES = [
  "# aliases(5)",
  "Root: admin, Ops@Example.COM",
  "   , more@example.com",
  "postmaster:root",
  "dup: first",
  "DUP: second",
  '"Quoted Name": q',
  "spaced :  a   b ,c",
  'pipe: |"/usr/bin/prog arg"',
  "file: /var/mail/file",
  "incl: :include:/etc/list",
  "comment: a (comment) b",
  "nocolon value",
  ": empty",
  "empty:",
  "remote@example.com: not local",
  "a,b: two names",
  "trailing: a,",
  "angle: <x@example.com>",
  "escape: a\\ b",
  "utf: Jürgen",
].join("\n") + "\n";

Deno.test({
  name: "postmap -q - agrees with Postfix's postmap on every table type",
  ignore: !haveOracle(),
  async fn(t) {
    const work = await Deno.makeTempDir({ prefix: "postmap-oracle-" });
    try {
      const { source, keys } = mapCorpus(20261201);
      await Deno.writeTextFile(`${work}/main.cf`, "");
      const types = new TextDecoder().decode(
        (await new Deno.Command("/usr/sbin/postconf", {
          args: ["-c", work, "-m"],
          stderr: "null",
        }).output()).stdout,
      ).split("\n");
      const compiled = ["hash", "btree", "lmdb", "cdb"].filter((ty) => {
        if (types.includes(ty)) return true;
        return missingPeer(`${ty}: postconf -m does not list it (apt install postfix-${ty})`);
      });
      const cases: OracleCase[] = [
        { label: "texthash", type: "texthash", source, keys },
        ...compiled.map((ty) => ({
          label: ty,
          type: ty,
          source: ty === "lmdb" ? mapCorpus(20261201, false).source : source,
          keys,
          build: true,
        })),
        { label: "hash -f", type: "hash", source, keys, build: true, flags: ["-f"] },
        { label: "hash -r", type: "hash", source, keys, build: true, flags: ["-r"] },
        { label: "hash -w", type: "hash", source, keys, build: true, flags: ["-w"] },
        { label: "texthash -f", type: "texthash", source, keys, flags: ["-f"] },
        {
          label: "hash without smtputf8",
          type: "hash",
          source,
          keys,
          build: true,
          mainCf: "",
        },
        {
          label: "inline",
          type: "inline",
          name:
            "{user1@example1.com=one, { User2 = two words }, USER3=three, user1@example1.com=dup}",
          keys: ["user1@example1.com", "USER1@EXAMPLE1.COM", "user2", "user3", "user4", ""],
        },
        { label: "static", type: "static", name: "{ OK  spaced }", keys: ["a", "B", ""] },
        {
          label: "unionmap",
          type: "unionmap",
          name: "{hash:@FILE, inline:{user1=extra, nosuch1=only-here}, texthash:@FILE}",
          source,
          build: ["hash:@FILE"],
          keys,
        },
        {
          label: "pipemap",
          type: "pipemap",
          name: `{hash:@FILE, inline:{${
            Array.from({ length: 160 }, (_, i) => `dest${i}@example.net=final${i}`).join(", ")
          }}}`,
          source,
          build: ["hash:@FILE"],
          keys,
        },
        {
          label: "pipemap single",
          type: "pipemap",
          name: "{texthash:@FILE}",
          source,
          keys: keys.slice(0, 50),
        },
        {
          label: "postalias",
          type: "hash",
          program: "postalias",
          source: ALIASES,
          build: true,
          keys: [
            "root",
            "ROOT",
            "postmaster",
            "dup",
            "quoted name",
            '"quoted name"',
            "spaced",
            "pipe",
            "file",
            "incl",
            "comment",
            "nocolon",
            "empty",
            "remote@example.com",
            "trailing",
            "angle",
            "escape",
            "utf",
            "@",
            "missing",
          ],
        },
      ];
      let queried = 0;
      for (const c of cases) {
        await t.step(c.label, async () => {
          const { real, ours } = await compareWithPostfix(c, work);
          assertEquals(ours.buildCode, real.buildCode, `${c.label}: build exit status`);
          assertEquals(ours.buildStderr, real.buildStderr, `${c.label}: build warnings`);
          assertEquals(ours.queryStdout, real.queryStdout, `${c.label}: -q - output`);
          assertEquals(ours.queryCode, real.queryCode, `${c.label}: -q - exit status`);
          assertEquals(ours.queryStderr, real.queryStderr, `${c.label}: -q - warnings`);
          queried += c.keys.length;
        });
      }
      assert(queried >= 500, `only ${queried} keys queried`);
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
