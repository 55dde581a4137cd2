import { assert, assertEquals, assertMatch } from "../tests/helpers/assert.ts";
import { helpText } from "./_help.ts";
import { OPTIONS as SENDMAIL_OPTIONS } from "./sendmail.ts";

const COMMANDS = [
  "newaliases",
  "postalias",
  "postcat",
  "postconf",
  "postmap",
  "postqueue",
  "postsuper",
  "postwarden",
  "qshape",
  "sendmail",
];

async function run(command: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`./${command}.ts`, import.meta.url).pathname, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The option letters a usage line names: "-x", "[-Nfinoprsvw]" clusters, "-c config_dir". */
function usageFlags(usage: string): string[] {
  const letters = new Set<string>();
  for (const m of usage.matchAll(/(?:^|[\s[|])-([A-Za-z]+)/g)) {
    for (const l of m[1]) letters.add(l);
  }
  return [...letters];
}

/** A getopt spec's letters ("c:fi:" gives c, f, i). */
const specFlags = (spec: string) => [...spec.replaceAll(":", "")];

Deno.test("--help: every command explains each option its usage names, and exits 0", async (t) => {
  for (const command of COMMANDS) {
    await t.step(command, async () => {
      const help = await run(command, ["--help"]);
      assertEquals(help.code, 0, help.stderr);
      assertEquals(help.stdout.trimEnd(), helpText(command)!.trimEnd());
      assertMatch(help.stdout, new RegExp(`^usage: ${command} `));
      // The usage line a bad option (or, for postwarden, no command) prints.
      const bad = await run(command, command === "postwarden" ? [] : ["-@"]);
      assert(bad.code !== 0, `${command} -@ exits non-zero`);
      // qshape, a Perl script in Postfix, says "Usage:".
      const usage = bad.stderr.slice(bad.stderr.search(/usage:/i));
      assert(/^usage:/i.test(usage), bad.stderr);
      const flags = command === "sendmail" ? specFlags(SENDMAIL_OPTIONS) : usageFlags(usage);
      // sendmail's -b names a mode in the same word (-bp).
      const end = command === "sendmail" ? "" : "([\\s=]|$)";
      for (const f of flags) {
        assertMatch(
          help.stdout,
          new RegExp(`(^|\\s)-${f}${end}`, "m"),
          `-${f} in ${command} --help`,
        );
      }
      if (command === "postwarden") {
        for (const sub of usage.trim().split(/\s+/).at(-1)!.split("|")) {
          assertMatch(help.stdout, new RegExp(`^  ${sub} `, "m"), `${sub} in postwarden --help`);
        }
      }
    });
  }
});
