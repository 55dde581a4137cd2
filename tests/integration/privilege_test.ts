/**
 * Started as root, Postwarden drops privilege like Postfix and then some:
 * no daemon runs as root, the mail owner account is created when missing,
 * a checkout the mail owner cannot reach (under /root, mode 0700) still
 * works, root never follows a link in the log or pid folders, and the log
 * is root's alone. These tests need root; without it they skip loudly, and
 * under CI=true that is a failure.
 */
import { wakeService } from "../../lib/service/wake.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import {
  maildirFiles,
  makeConf,
  postwarden,
  processesOf,
  smtpSend,
  testHosting,
  waitPort,
  waitUntil,
} from "../helpers/instance.ts";
import { haveRoot, run } from "../helpers/peers.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const opts = { sanitizeOps: false, sanitizeResources: false };
/** A config folder in a fresh temporary folder of the given mode. */
const makeConfMode = (mode: number, extra = "") =>
  makeConf({ prefix: "postwarden-priv-", mode, mainCf: extra });

async function cleanUp(dir: string, conf: string): Promise<void> {
  await postwarden(conf, "stop");
  for (const pid of await processesOf(conf)) Deno.kill(pid, "SIGKILL");
  const q = `${dir}/var`;
  const st = await Deno.lstat(q).catch(() => null);
  if (st?.isSymlink) await Deno.remove(await Deno.readLink(q), { recursive: true });
  await Deno.remove(dir, { recursive: true });
}

/** program name -> uid of every process started for this config. */
async function processOwners(conf: string): Promise<Map<string, number[]>> {
  const owners = new Map<string, number[]>();
  for (const pid of await processesOf(conf)) {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
    const m =
      /\/(?:daemons\/(\w+)\/main\.ts|commands\/(postwarden)\.ts|daemons\/master\/(host)\.ts)/
        .exec(cmd);
    if (!m) continue;
    const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
    const uid = /^Uid:\s+(\d+)/m.exec(status);
    if (!uid) continue;
    const name = m[1] ?? m[2] ?? m[3];
    owners.set(name, [...(owners.get(name) ?? []), Number(uid[1])]);
  }
  return owners;
}

async function userdel(name: string): Promise<void> {
  await new Deno.Command("userdel", { args: [name], stdout: "null", stderr: "null" }).output()
    .catch(() => {});
}

Deno.test({
  name: "as root no daemon runs as root: mail_owner, created when missing, runs them",
  ...opts,
  fn: async () => {
    if (!haveRoot("privilege test")) return;
    const owner = `pwt${Deno.pid % 100000}`;
    await userdel(owner);
    const { dir, conf, port } = await makeConfMode(0o755, `mail_owner = ${owner}\n`);
    try {
      const s = await postwarden(conf, "start");
      assertEquals(s.code, 0, s.stderr);
      assertMatch(s.stderr, new RegExp(`created the mail_owner account ${owner}`));
      await waitPort(port);
      const pw = (await Deno.readTextFile("/etc/passwd")).split("\n").find((l) =>
        l.startsWith(`${owner}:`)
      );
      assert(pw, "the account exists");
      const uid = Number(pw.split(":")[2]);
      assert(uid !== 0);
      // The delivery agents, bounce and anvil start on demand (lib/service/wake.ts).
      for (const svc of ["local", "virtual", "pipe", "smtp", "bounce", "error", "anvil"]) {
        await wakeService(`${dir}/var`, svc).catch(() => {}); // pipe: not in every master.cf
      }
      await waitUntil(
        async () => (await processOwners(conf)).has("virtual"),
        30_000,
        "virtual to start",
      );
      const owners = await processOwners(conf);
      assertEquals(owners.get("master"), [0]);
      let daemons = 0;
      for (const [name, uids] of owners) {
        if (name === "master" || name === "postwarden") continue;
        // pipe and virtual (unprivileged=n) are root, as in Postfix (docs/security.md).
        const want = name === "pipe" || name === "virtual" ? 0 : uid;
        for (const u of uids) assertEquals(u, want, `${name} runs as ${want ? owner : "root"}`);
        daemons += uids.length;
      }
      assertEquals(owners.get("virtual"), [0], "conf/master.cf's virtual runs as root");
      if (testHosting() === "worker") {
        // The rest are Workers of the host, which runs as the mail owner.
        assertEquals(owners.get("host"), [uid], "the worker host runs as the mail owner");
        assert(daemons >= 3, `daemons found: ${[...owners.keys()]}`);
      } else assert(daemons >= 9, `daemons found: ${[...owners.keys()]}`);
      // The log is root's: mode 0600, the daemons hold no grant on it.
      const log = await Deno.stat(`${dir}/var/log/maillog`);
      assertEquals([log.uid, log.mode! & 0o777], [0, 0o600]);
      assertMatch(await Deno.readTextFile(`${dir}/var/log/maillog`), /daemons run as/);
    } finally {
      await cleanUp(dir, conf);
      await userdel(owner);
    }
  },
});

Deno.test({
  name: "as root from a folder the mail owner cannot reach (like /root): mail is delivered",
  ...opts,
  fn: async () => {
    if (!haveRoot("privilege test")) return;
    const { dir, conf, port } = await makeConfMode(0o700);
    try {
      const s = await postwarden(conf, "start");
      assertEquals(s.code, 0, s.stderr);
      assertMatch(s.stderr, /is not reachable by postfix .* linked from/);
      const q = await Deno.lstat(`${dir}/var`);
      assert(q.isSymlink, "var/ leads to the relocated queue");
      assertMatch(await Deno.readLink(`${dir}/var`), /^\/var\/spool\/postwarden\//);
      await waitPort(port);
      const r = await smtpSend(port, {
        from: "bob@example.com",
        to: ["root@localhost"], // an account: the embedded config refuses unknown users
        body: "Subject: hi\r\n\r\nhello\r\n",
      });
      assertEquals(r.code, 250, r.text);
      await waitUntil(
        async () => (await maildirFiles(`${dir}/var/mail`, "root")).length === 1,
        15_000,
        "delivery",
      );
      // The admin commands find the queue through the configured path.
      const mailq = await run(Deno.execPath(), [
        "run",
        "-A",
        `${ROOT}/commands/postqueue.ts`,
        "-c",
        conf,
        "-p",
      ]);
      assertMatch(mailq.stdout + mailq.stderr, /Mail queue is empty/);
    } finally {
      await cleanUp(dir, conf);
    }
  },
});

Deno.test({
  name: "root never follows a link planted in the log or pid folders",
  ...opts,
  fn: async () => {
    if (!haveRoot("privilege test")) return;
    const { dir, conf } = await makeConfMode(0o755);
    const victim = `${dir}/victim`;
    try {
      // A first start lays the queue out; the mail owner cannot write log/ or pid/.
      assertEquals((await postwarden(conf, "start")).code, 0);
      assertEquals((await postwarden(conf, "stop")).code, 0);
      for (const d of ["log", "pid"]) {
        const st = await Deno.stat(`${dir}/var/${d}`);
        assertEquals([st.uid, st.mode! & 0o777], [0, 0o755], d);
        const ln = await new Deno.Command("runuser", {
          args: ["-u", "postfix", "--", "ln", "-s", victim, `${dir}/var/${d}/x`],
          stderr: "piped",
        }).output();
        assert(!ln.success, `the mail owner cannot write ${d}/`);
      }
      // Links left by an older layout (or by anyone) are refused, not followed.
      await Deno.writeTextFile(victim, "precious\n", { mode: 0o644 });
      await Deno.chmod(victim, 0o644);
      await Deno.remove(`${dir}/var/log/maillog`);
      await Deno.symlink(victim, `${dir}/var/log/maillog`);
      const s = await postwarden(conf, "start");
      assert(s.code !== 0, "start refuses a linked maillog");
      assertMatch(s.stderr, /maillog is a symbolic link/);
      await Deno.remove(`${dir}/var/log/maillog`);
      await Deno.symlink(victim, `${dir}/var/pid/.master.pid.tmp`);
      const s2 = await postwarden(conf, "start");
      assertEquals(s2.code, 0, s2.stderr);
      await postwarden(conf, "stop");
      const st = await Deno.stat(victim);
      assertEquals(await Deno.readTextFile(victim), "precious\n");
      assertEquals([st.uid, st.mode! & 0o777], [0, 0o644]);
    } finally {
      await cleanUp(dir, conf);
    }
  },
});

Deno.test({
  name: "postwarden check names wrong owners and modes in the queue, as postfix check does",
  ...opts,
  fn: async () => {
    if (!haveRoot("privilege test")) return;
    const { dir, conf } = await makeConfMode(0o755);
    try {
      assertEquals((await postwarden(conf, "start")).code, 0);
      assertEquals((await postwarden(conf, "stop")).code, 0);
      const clean = await postwarden(conf, "check");
      assertEquals(clean.code, 0, clean.stderr);
      assert(!/not owned by|mode \d+, should be/.test(clean.stderr), clean.stderr);
      await Deno.chmod(`${dir}/var/active`, 0o755);
      await Deno.chown(`${dir}/var/pid`, 65534, 65534);
      const c = await postwarden(conf, "check");
      assertMatch(c.stderr, new RegExp(`warning: ${dir}/var/active: mode 755, should be 700`));
      assertMatch(c.stderr, new RegExp(`warning: not owned by root: ${dir}/var/pid`));
      // start repairs both.
      assertEquals((await postwarden(conf, "start")).code, 0);
      const st = await Deno.stat(`${dir}/var/pid`);
      assertEquals(st.uid, 0);
      assertEquals((await Deno.stat(`${dir}/var/active`)).mode! & 0o777, 0o700);
    } finally {
      await cleanUp(dir, conf);
    }
  },
});
