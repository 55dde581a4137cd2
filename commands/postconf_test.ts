/** Tests for the postconf command (postconf.ts), run in-process against temporary config folders. */

import { postconf } from "./postconf.ts";
import { assertEquals } from "../tests/helpers/assert.ts";

async function run(args: string[], env: { MAIL_CONFIG?: string } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await postconf(args, {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env,
    hostname: "vm",
  });
  return { code, out, err };
}

const MAIN = `# test config
myhostname = mx.example.org
relayhost = [$mydomain]:587
mydestination = $myhostname,
    localhost
empty_address_recipient =
`;

Deno.test("postconf", async (t) => {
  const dir = await Deno.makeTempDir();
  const main = `${dir}/main.cf`;
  await Deno.writeTextFile(main, MAIN);
  try {
    await t.step("named parameters, raw, in the order given", async () => {
      const r = await run(["-c", dir, "relayhost", "mail_name", "empty_address_recipient"]);
      assertEquals(r, {
        code: 0,
        out: ["relayhost = [$mydomain]:587", "mail_name = Postwarden", "empty_address_recipient ="],
        err: [],
      });
    });
    await t.step("-x expands, -h prints values only, combined flags", async () => {
      assertEquals((await run(["-c", dir, "-x", "relayhost"])).out, [
        "relayhost = [example.org]:587",
      ]);
      assertEquals((await run(["-xh", `-c${dir}`, "relayhost", "relay_transport"])).out, [
        "[example.org]:587",
        "relay",
      ]);
    });
    await t.step("-x shows myorigin = /path as the path, as Postfix's postconf", async () => {
      const other = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${other}/mailname`, "mail.example.org\n");
        await Deno.writeTextFile(`${other}/main.cf`, `myorigin = ${other}/mailname\n`);
        assertEquals((await run(["-c", other, "-x", "myorigin"])).out, [
          `myorigin = ${other}/mailname`,
        ]);
      } finally {
        await Deno.remove(other, { recursive: true });
      }
    });
    await t.step("-n: explicit settings sorted, with config_directory", async () => {
      assertEquals((await run(["-n", "-c", dir])).out, [
        `config_directory = ${dir}`,
        "empty_address_recipient =",
        "mydestination = $myhostname, localhost",
        "myhostname = mx.example.org",
        "relayhost = [$mydomain]:587",
      ]);
      const viaEnv = await run(["-n"], { MAIL_CONFIG: dir });
      assertEquals(viaEnv.out[0], `config_directory = ${dir}`);
    });
    await t.step("-d ignores main.cf", async () => {
      assertEquals((await run(["-d", "-c", dir, "myhostname", "mydomain", "relayhost"])).out, [
        "myhostname = vm.localdomain",
        "mydomain = localdomain",
        "relayhost =",
      ]);
      assertEquals((await run(["-dx", "-c", dir, "smtpd_timeout"])).out, ["smtpd_timeout = 300s"]);
    });
    await t.step("no names: every table parameter, sorted", async () => {
      const r = await run(["-c", dir]);
      const names = r.out.map((l) => l.split(" ")[0]);
      assertEquals(names, [...names].sort());
      assertEquals(
        names.includes("smtpd_banner") && names.includes("2bounce_notice_recipient"),
        true,
      );
    });
    await t.step("unknown and unsupported names warn on stderr", async () => {
      const r = await run(["-c", dir, "bogus", "smtp_tls_session_cache_database", "relayhost"]);
      assertEquals(r.code, 0);
      assertEquals(r.out, ["relayhost = [$mydomain]:587"]);
      assertEquals(r.err, [
        "postconf: warning: bogus: unknown parameter",
        "postconf: warning: parameter smtp_tls_session_cache_database is not supported by Postwarden",
      ]);
    });
    await t.step("-e edits in place, keeping comments; -X deletes", async () => {
      assertEquals(
        (await run(["-c", dir, "-e", "mydestination = localhost", "new_param=a b "])).code,
        0,
      );
      assertEquals(
        await Deno.readTextFile(main),
        "# test config\nmyhostname = mx.example.org\nrelayhost = [$mydomain]:587\n" +
          "mydestination = localhost\nempty_address_recipient =\nnew_param = a b\n",
      );
      assertEquals((await run(["-c", dir, "-X", "new_param", "relayhost"])).code, 0);
      assertEquals(
        await Deno.readTextFile(main),
        "# test config\nmyhostname = mx.example.org\nmydestination = localhost\nempty_address_recipient =\n",
      );
      const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name);
      assertEquals(leftovers, ["main.cf"]);
    });
    await t.step("-M prints master.cf services", async () => {
      await Deno.writeTextFile(
        `${dir}/master.cf`,
        "smtp inet n - y - - smtpd\n  -o { a = b c }\npickup unix n - y 60 1 pickup\n",
      );
      assertEquals((await run(["-c", dir, "-M"])).out, [
        "smtp       inet  n       -       y       -       -       smtpd -o {a=b c}",
        "pickup     unix  n       -       y       60      1       pickup",
      ]);
      const one = await run(["-c", dir, "-M", "pickup/unix", "nope/inet"]);
      assertEquals(one.out, ["pickup     unix  n       -       y       60      1       pickup"]);
      assertEquals(one.err, ['postconf: warning: unmatched request: "nope/inet"']);
    });
    await t.step("warnings from main.cf go to stderr", async () => {
      await Deno.writeTextFile(main, "a = 1\na = 2\nrelayhost = $a\n");
      const r = await run(["-c", dir, "-x", "relayhost"]);
      assertEquals(r.out, ["relayhost = 2"]);
      assertEquals(r.err, [
        `postconf: warning: ${dir}/main.cf, line 2: overriding earlier entry: a=1`,
      ]);
    });
    await t.step("fatal errors exit 1", async () => {
      const missing = await run(["-c", `${dir}/nope`, "-n"]);
      assertEquals(missing.code, 1);
      assertEquals(missing.err, [
        `postconf: fatal: open ${dir}/nope/main.cf: No such file or directory`,
      ]);
      assertEquals((await run(["-c", dir, "-e", "novalue"])).err, [
        `postconf: fatal: missing '=' after attribute name: "novalue"`,
      ]);
      assertEquals((await run(["-c", dir, "-e"])).code, 1);
      assertEquals((await run(["-q"])).code, 1);
      await Deno.writeTextFile(main, "relayhost = $relayhost\n");
      const loop = await run(["-c", dir, "-x", "relayhost"]);
      assertEquals(loop.code, 1);
      assertEquals(loop.err[0].startsWith("postconf: fatal: parameter expansion loop"), true);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
