/**
 * The admin command as an administrator uses it: start in the background,
 * status, stop leaving no process, and the live permission audit.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { makeConf, postwarden, processesOf, waitPort } from "../helpers/instance.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "postwarden start, status, stop in the background",
  ...opts,
  fn: async () => {
    const { dir, conf, port } = await makeConf();
    try {
      const s = await postwarden(conf, "start");
      assertEquals(s.code, 0, s.stderr);
      await waitPort(port);
      const st = await postwarden(conf, "status");
      assertMatch(st.stderr, /is running: PID: \d+/);
      const again = await postwarden(conf, "start");
      assert(again.code !== 0, "a second master is refused");
      assertMatch(again.stderr, /already running/);
      const stop = await postwarden(conf, "stop");
      assertEquals(stop.code, 0, stop.stderr);
      assertEquals(await processesOf(conf), []);
      const st2 = await postwarden(conf, "status");
      assertEquals(st2.code, 1);
    } finally {
      for (const pid of await processesOf(conf)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a second instance on a port another one listens on does not start",
  ...opts,
  fn: async () => {
    // smtpd binds with SO_REUSEPORT for reloads; without the check at start
    // the second instance would start, and the kernel would hand it half of
    // the first one's connections, answered with its own configuration.
    const a = await makeConf();
    const b = await makeConf();
    try {
      const master = await Deno.readTextFile(`${b.conf}/master.cf`);
      await Deno.writeTextFile(
        `${b.conf}/master.cf`,
        master.replace(`127.0.0.1:${b.port} `, `127.0.0.1:${a.port} `),
      );
      const s = await postwarden(a.conf, "start");
      assertEquals(s.code, 0, s.stderr);
      await waitPort(a.port);
      const second = await postwarden(b.conf, "start");
      assert(second.code !== 0, second.stderr);
      assertMatch(second.stderr, new RegExp(`bind 127\\.0\\.0\\.1:${a.port}: .*in use`, "i"));
      assertEquals(await processesOf(b.conf), []);
    } finally {
      for (const c of [a, b]) {
        await postwarden(c.conf, "stop");
        for (const pid of await processesOf(c.conf)) Deno.kill(pid, "SIGKILL");
        await Deno.remove(c.dir, { recursive: true });
      }
    }
  },
});

Deno.test({
  name: "postwarden_mta_sts: no mtasts service, or no trust anchors, stops the start",
  ...opts,
  fn: async () => {
    const { dir, conf } = await makeConf({
      mainCf: "postwarden_mta_sts = yes\npostwarden_mta_sts_CAfile = /nonexistent/ca.pem\n",
    });
    try {
      const noService = await postwarden(conf, "start");
      assert(noService.code !== 0, noService.stderr);
      assertMatch(noService.stderr, /postwarden_mta_sts = yes needs the mtasts service/);
      const master = await Deno.readTextFile(`${conf}/master.cf`);
      await Deno.writeTextFile(`${conf}/master.cf`, master.replace(/^#(mtasts\s+unix)/m, "$1"));
      const noCa = await postwarden(conf, "start");
      assert(noCa.code !== 0, noCa.stderr);
      assertMatch(noCa.stderr, /postwarden_mta_sts_CAfile \/nonexistent\/ca\.pem: no such file/);
      assertEquals(await processesOf(conf), []);
    } finally {
      for (const pid of await processesOf(conf)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "postwarden audit measures each sandbox live",
  ...opts,
  fn: async () => {
    const { dir, conf } = await makeConf();
    try {
      const r = await postwarden(conf, "audit");
      assertEquals(r.code, 0, r.stderr);
      const lines = r.stdout.split("\n");
      const section = (name: string) => {
        const start = lines.findIndex((l) => l.includes(name));
        assert(start >= 0, `audit lists ${name}`);
        let end = start + 1;
        while (end < lines.length && lines[end].startsWith("  ")) end++;
        return lines.slice(start, end).join("\n");
      };
      // Every daemon, whatever its job: no remote code, no implicit storage,
      // no configuration, no log, no other daemon's socket.
      const headers = lines.filter((l) => /^\S+\/(inet|unix) \(/.test(l));
      assert(headers.length >= 9, r.stdout);
      for (const h of headers) {
        const s = section(h);
        for (
          const what of [
            "import code from npm",
            "import code over HTTP",
            "keep data in localStorage",
            "keep data in the Cache API",
            "open Deno KV without a path",
            "read main.cf",
            "write the maillog",
            // local runs alias and .forward commands with /bin/sh in an instance one
            // user runs (not root); started as root it leaves them to a root local.
            ...(h.includes("(local)") && Deno.uid() !== 0 ? [] : ["run /bin/sh"]),
          ]
        ) assertMatch(s, new RegExp(`cannot ${what}`), `${h}: ${what}`);
        for (const m of s.matchAll(/^ {2}(can|cannot) +(remove or replace|listen on) (\S+)/gm)) {
          assertEquals(m[1], "cannot", `${h}: ${m[2]} ${m[3]}`);
        }
      }
      assertMatch(r.stdout, /HTTP import attempts that reached the test server: 0/);
      assertMatch(section("/inet (smtpd)"), /cannot remove or replace private\/cleanup/);
      assertMatch(section("/inet (smtpd)"), /cannot listen on peer\/cleanup\.unix\.pickup/);
      const smtpd = section("/inet (smtpd)");
      assertMatch(smtpd, /cannot read \/etc\/shadow/);
      assertMatch(smtpd, /cannot write active\//);
      assertMatch(smtpd, /can {4}bind 127\.0\.0\.1:\d+/);
      const cleanup = section("cleanup/unix");
      assertMatch(cleanup, /cannot connect 127\.0\.0\.1:25/);
      assertMatch(cleanup, /can {4}write incoming\//);
      const local = section("local/unix");
      assertMatch(local, /cannot connect 127\.0\.0\.1:25/);
      assertMatch(local, /can {4}write a mailbox/);
      const smtp = section("smtp/unix");
      assertMatch(smtp, /can {4}connect 127\.0\.0\.1:25/);
      assertMatch(smtp, /cannot write a mailbox/);
      for (const line of r.stdout.split("\n").filter((l) => l.includes("flags:"))) {
        assert(!/--allow-(all|read|write|net|run)( |$)/.test(line) && !line.includes(" -A"), line);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a bad parameter value stops start with a message naming it",
  ...opts,
  fn: async () => {
    const { dir, conf } = await makeConf();
    await Deno.writeTextFile(`${conf}/main.cf`, "message_size_limit = 10m\n", { append: true });
    try {
      const s = await postwarden(conf, "start");
      assertEquals(s.code, 1);
      assertMatch(s.stderr, /fatal: main\.cf: bad numerical value for message_size_limit: 10m/);
      const c = await postwarden(conf, "check");
      assertEquals(c.code, 1);
      assertMatch(c.stderr, /message_size_limit/);
      assertEquals(await processesOf(conf), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "postwarden start refuses a port something else listens on",
  ...opts,
  fn: async () => {
    const { dir, conf, port } = await makeConf();
    const squatter = Deno.listen({ hostname: "127.0.0.1", port });
    try {
      const s = await postwarden(conf, "start");
      assert(s.code !== 0, s.stderr);
      assertMatch(
        s.stderr,
        new RegExp(`fatal: bind 127\\.0\\.0\\.1:${port}: Address already in use`),
      );
      assertEquals(await processesOf(conf), []);
    } finally {
      squatter.close();
      await postwarden(conf, "stop");
      for (const pid of await processesOf(conf)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
