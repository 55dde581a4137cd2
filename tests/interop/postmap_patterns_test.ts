/**
 * Differential test: Postwarden's regexp:, pcre: and cidr: tables against a
 * real Postfix (the oracle) on the corpora under
 * tests/fixtures/postmap_patterns/: each `<name>.<type>` table is queried
 * with `<type>.keys` plus `<name>.<type>.keys` (when present) through
 * `postmap -c <dir with empty main.cf> -q - type:/path`, and stdout
 * ("key<TAB>value" per found key) and exit status must be identical.
 *
 * Warnings (stderr) are compared as sets of lines, minus the documented
 * differences: PCRE2's compile error texts ("error in regex at offset N:
 * ...") against ours ("error in regex: ..."), and our "... is not
 * supported" warnings for rules Postfix compiles (`\d` in a POSIX pattern,
 * possessive quantifiers ...).
 *
 * The generated* corpora come from a random rule and key generator run
 * against Postfix (1,500 regexp, 1,300 pcre and 80 cidr seeds when
 * written): every difference it found was fixed, or is a rule Postwarden
 * warns about at open ("... is not supported exactly": a substituted group
 * inside a repetition); the seeds kept here agree in full.
 *
 * Ours is `deno task postmap -q -` (commands/postmap.ts, OURS) with an
 * empty main.cf, like Postfix's. Without `postmap` the test is skipped with
 * a warning, or fails when CI=true.
 *
 * @module
 */
import { assertEquals } from "../helpers/assert.ts";
import { missingPeer } from "../helpers/peers.ts";

const FIXTURES = new URL("../fixtures/postmap_patterns/", import.meta.url).pathname;
const POSTMAP = new URL("../../commands/postmap.ts", import.meta.url).pathname;
const EMPTY_CONF = await Deno.makeTempDir({ prefix: "pw-postmap-conf-" });
await Deno.writeTextFile(`${EMPTY_CONF}/main.cf`, "");
/** Our `postmap -q -`: the arguments before "type:name". */
const OURS = [Deno.execPath(), "run", "--no-prompt", "-A", POSTMAP, "-c", EMPTY_CONF, "-q", "-"];

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], stdin: string): Promise<Output> {
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(stdin));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function findPostmap(): Promise<string | undefined> {
  for (const p of ["/usr/sbin/postmap", "/usr/bin/postmap"]) {
    try {
      await Deno.stat(p);
      return p;
    } catch { /* next */ }
  }
  return undefined;
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return fallback;
  }
}

/** Warning lines worth comparing (see the module comment). */
function warnings(stderr: string): string[] {
  return stderr.split("\n")
    .filter((l) => l !== "")
    .filter((l) => !/error in regex|is not supported/.test(l))
    .sort();
}

const postmap = await findPostmap();

Deno.test({
  name: "postmap -q: regexp, pcre and cidr tables answer as Postfix's",
  fn: async (t) => {
    if (postmap === undefined) {
      missingPeer("postmap_patterns_test: postmap (Postfix) is not installed");
      return;
    }
    const conf = await Deno.makeTempDir({ prefix: "postmap-oracle-" });
    await Deno.writeTextFile(`${conf}/main.cf`, "");
    // Postfix matches bytes with or without SMTPUTF8; bytes.* tables are
    // compared under both.
    const utf8 = `${conf}/utf8`;
    await Deno.mkdir(utf8);
    await Deno.writeTextFile(`${utf8}/main.cf`, "smtputf8_enable = yes\n");
    let compared = 0;
    try {
      const tables = [...Deno.readDirSync(FIXTURES)]
        .map((e) => e.name)
        .filter((n) => /\.(regexp|pcre|cidr)$/.test(n))
        .sort();
      for (const name of tables) {
        const type = name.slice(name.lastIndexOf(".") + 1);
        const keys = (await readOr(`${FIXTURES}${type}.keys`, "")) +
          (await readOr(`${FIXTURES}${name}.keys`, ""));
        const spec = `${type}:${FIXTURES}${name}`;
        await t.step(name, async () => {
          const ours = await run([...OURS, spec], keys);
          for (const dir of name.startsWith("bytes.") ? [conf, utf8] : [conf]) {
            const theirs = await run([postmap, "-c", dir, "-q", "-", spec], keys);
            assertEquals(ours.stdout, theirs.stdout, `stdout of ${spec} (${dir})`);
            assertEquals(ours.code, theirs.code, `exit status of ${spec}`);
            assertEquals(warnings(ours.stderr), warnings(theirs.stderr), `warnings of ${spec}`);
          }
        });
        compared += keys.split("\n").filter((k) => k !== "").length;
      }
    } finally {
      await Deno.remove(conf, { recursive: true });
    }
    if (compared < 300) throw new Error(`only ${compared} keys compared; the corpus needs 300`);
  },
});
