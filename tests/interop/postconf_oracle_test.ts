/**
 * Differential test: Postwarden's postconf against a real Postfix postconf
 * (the oracle) on the main.cf/master.cf fixtures under
 * tests/fixtures/postconf/<case>/. Compares stdout and exit status of `-n`,
 * named parameters raw, `-x`, `-h`, `-d`, `-dx`, `-M`, and `-b`/`-t` (bounce
 * templates) where the fixture has a bounce.cf. Stderr is not
 * compared (Postfix repeats and reorders its warnings).
 *
 * Only parameters of Postwarden's table are asked for, minus those whose
 * default deliberately differs (see SKIP). A missing `postconf` binary skips
 * the test with a warning, or fails it when CI=true.
 *
 * @module
 */

import { PARAMS } from "../../lib/config/mod.ts";
import { assertEquals } from "../helpers/assert.ts";
import { missingPeer } from "../helpers/peers.ts";

const FIXTURES = new URL("../fixtures/postconf/", import.meta.url);
const OURS = new URL("../../commands/postconf.ts", import.meta.url).pathname;

/** Parameters not compared, and why. */
const SKIP = new Map([
  ["syslog_name", "Postwarden default is postwarden"],
  ["mail_name", "Postwarden default is Postwarden"],
  ["mail_version", "Postwarden prints its own version"],
  ["smtpd_banner", "its default expands $mail_name, whose default differs"],
  ["postscreen_greet_banner", "its default expands $smtpd_banner, whose default differs"],
  ["milter_macro_v", "its default expands $mail_name $mail_version, whose defaults differ"],
  ["smtpd_forbid_bare_newline", "Postwarden uses Postfix 3.9's default"],
  ["smtpd_forbid_unauth_pipelining", "Postwarden uses Postfix 3.9's default"],
  ["smtpd_forbid_bare_newline_exclusions", "its default expands $mynetworks (see below)"],
  ["mynetworks", "Postfix computes the default from the host's interfaces"],
  [
    "smtpd_client_event_limit_exceptions",
    "its default expands $mynetworks, whose default Postfix computes from the host's interfaces",
  ],
]);
// Postwarden's own, and names of later Postfix releases than the oracle's 3.7.
const NAMES = [...PARAMS.values()].filter((p) =>
  !SKIP.has(p.name) && !p.name.startsWith("postwarden_") && !p.postfix
).map((p) => p.name);

interface Result {
  code: number;
  stdout: string;
}

async function run(cmd: string, args: string[]): Promise<Result> {
  const env = { ...Deno.env.toObject() };
  delete env.MAIL_CONFIG;
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env,
  })
    .output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

const postfix = (args: string[]) => run("postconf", args);
const ours = (args: string[]) =>
  run(Deno.execPath(), [
    "run",
    "--no-prompt",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-sys=hostname",
    OURS,
    ...args,
  ]);

async function havePostconf(): Promise<boolean> {
  try {
    await postfix(["-d", "mail_version"]);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

const available = await havePostconf();
if (!available) {
  missingPeer(
    "postconf_oracle_test: Postfix `postconf` not found; install Postfix " +
      "(scripts/install-peers.sh) to run the differential test",
  );
}

const cases = available
  ? [...Deno.readDirSync(FIXTURES)].filter((e) => e.isDirectory).map((e) => e.name).sort()
  : [];

Deno.test({
  name: "postconf matches Postfix postconf",
  ignore: !available,
  async fn(t) {
    for (const name of cases) {
      const dir = new URL(`${name}/`, FIXTURES).pathname.replace(/\/$/, "");
      const invocations: string[][] = [
        ["-n"],
        ["-nx"],
        NAMES,
        ["-x", ...NAMES],
        ["-h", ...NAMES],
        ["-d", ...NAMES],
        ["-dx", ...NAMES],
        ["-xh", "mydestination", "relayhost", "smtpd_banner"],
      ];
      let hasMaster = true;
      try {
        Deno.statSync(`${dir}/master.cf`);
      } catch {
        hasMaster = false;
      }
      if (hasMaster) invocations.push(["-M"], ["-M", "smtp", "pickup/unix", "tlsmgr/inet"]);
      try {
        Deno.statSync(`${dir}/bounce.cf`);
        // bounce(5): main.cf's bounce_template_file, then the file named.
        invocations.push(["-t"], ["-b"], ["-t", `${dir}/bounce.cf`], ["-b", `${dir}/bounce.cf`]);
      } catch {
        // no templates in this fixture
      }
      for (const args of invocations) {
        const label = `${name}: postconf ${args.slice(0, 3).join(" ")}${
          args.length > 3 ? " ..." : ""
        }`;
        await t.step(label, async () => {
          const [want, got] = await Promise.all([
            postfix(["-c", dir, ...args]),
            ours(["-c", dir, ...args]),
          ]);
          assertEquals(
            want.stdout !== "",
            true,
            "oracle printed nothing: fixture or arguments broken",
          );
          assertEquals(got, want);
        });
      }
    }
  },
});
