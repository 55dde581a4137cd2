/**
 * Tests for writing as the recipient (privilege.ts, mailbox.ts as root):
 * which uid and gid each kind of mailbox is written with (Postfix's
 * set_eugid() rules), that the files belong to the recipient, that a
 * symlink another user plants in a world-writable spool or a recipient
 * plants in their home does not make root write elsewhere, and that the
 * writer's sandbox holds to its one mailbox. Needs root (skips loudly
 * otherwise, fails under CI=true).
 */
import { makeConfig } from "../../lib/config/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { prepareRuntime } from "../../lib/runtime/mod.ts";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { haveRoot } from "../../tests/helpers/peers.ts";
import { deliverToMailbox, type MailboxEnv, type MailboxResult } from "./mailbox.ts";
import { recipientWriter } from "./privilege.ts";
import {
  deliverToCommand,
  deliverToFile,
  forwardFor,
  includeFor,
  type SpecialEnv,
} from "./special.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const MESSAGE = "Subject: hi\r\n\r\nFrom the start\r\nbody\r\n";
const NOBODY = 65534;
const DAEMON = 1;

Deno.test("local writes as the recipient when it runs as root", async (t) => {
  if (!haveRoot("delivering as the recipient's uid")) return;
  const { runtime } = await prepareRuntime({ source: ROOT, deno: Deno.execPath(), stage: true });
  const writer = recipientWriter({ deno: runtime.deno, code: runtime.code, timeoutMs: 60_000 });
  const dir = await Deno.makeTempDir({ prefix: "pw-local-root-" });
  await Deno.chmod(dir, 0o755);
  const home = `${dir}/home`;
  await Deno.mkdir(home, { mode: 0o700 });
  await Deno.chown(home, NOBODY, NOBODY);
  await Deno.writeTextFile(
    `${dir}/passwd`,
    `nobody:x:${NOBODY}:${NOBODY}::${home}:/bin/sh\ndaemon:x:${DAEMON}:${DAEMON}::/:/bin/sh\n`,
  );
  const warnings: string[] = [];
  const env = (mainCf: string): MailboxEnv => ({
    config: makeConfig("/etc/x", mainCf + "mailbox_delivery_lock = flock, dotlock\n"),
    passwd: new PasswdFile(`${dir}/passwd`),
    root: true,
    writer,
    content: async function* () {
      yield new TextEncoder().encode(MESSAGE);
    },
    now: () => Date.UTC(2026, 11, 2, 6, 8, 10),
    warn: (w) => warnings.push(w),
  });
  const deliver = (mainCf: string, user = "nobody"): Promise<Exclude<MailboxResult, "unknown">> =>
    deliverToMailbox(env(mainCf), {
      user,
      address: `${user}@here`,
      sender: "a@x",
      delivered: `${user}@here`,
    }).then((r) => {
      if (r === "unknown") throw new Error(`${user}: unknown`);
      return r;
    });
  try {
    await t.step("world-writable spool: the recipient creates the mbox", async () => {
      const spool = `${dir}/sticky`;
      await Deno.mkdir(spool);
      await Deno.chmod(spool, 0o1777);
      const r = await deliver(`mail_spool_directory = ${spool}\n`);
      assertEquals(r, { status: "sent", dsn: "2.0.0", reason: "delivered to mailbox" });
      const st = await Deno.stat(`${spool}/nobody`);
      assertEquals([st.uid, st.gid, st.mode! & 0o777], [NOBODY, NOBODY, 0o600]);
      const text = await Deno.readTextFile(`${spool}/nobody`);
      assertMatch(text, /^From a@x {2}\w{3} Dec {2}2 /);
      assert(text.includes("\n>From the start\nbody\n\n"), text);
    });
    await t.step("root-only spool: root creates the file and gives it to the user", async () => {
      const spool = `${dir}/rootspool`;
      await Deno.mkdir(spool, { mode: 0o755 });
      await Deno.chmod(spool, 0o755);
      const r = await deliver(`mail_spool_directory = ${spool}\n`);
      assertEquals(r, { status: "sent", dsn: "2.0.0", reason: "delivered to mailbox" });
      const st = await Deno.stat(`${spool}/nobody`);
      assertEquals([st.uid, st.gid], [NOBODY, NOBODY]);
      const again = await deliver(`mail_spool_directory = ${spool}\n`);
      assertEquals(again.status, "sent", JSON.stringify(again));
    });
    await t.step("a symlink another user plants in the spool is refused", async () => {
      const spool = `${dir}/sticky2`;
      await Deno.mkdir(spool);
      await Deno.chmod(spool, 0o1777);
      await Deno.writeTextFile(`${dir}/secret`, "root's\n");
      // daemon (another user) points nobody's mailbox at a file only root may write.
      await Deno.symlink(`${dir}/secret`, `${spool}/nobody`);
      await chownLink(`${spool}/nobody`, DAEMON);
      const r = await deliver(`mail_spool_directory = ${spool}\n`);
      assertEquals(r, {
        status: "bounced",
        dsn: "5.2.0",
        reason: `cannot update mailbox ${spool}/nobody for user nobody. file is a symbolic link`,
      });
      assertEquals(await Deno.readTextFile(`${dir}/secret`), "root's\n");
    });
    await t.step(
      "home_mailbox: mbox and Maildir as the user; a planted link writes nothing of root's",
      async () => {
        const r = await deliver(`home_mailbox = Mailbox\n`);
        assertEquals(r, { status: "sent", dsn: "2.0.0", reason: "delivered to mailbox" });
        assertEquals((await Deno.stat(`${home}/Mailbox`)).uid, NOBODY);
        const m = await deliver(`home_mailbox = Maildir/\n`);
        assertEquals(m, { status: "sent", dsn: "2.0.0", reason: "delivered to maildir" });
        const files = [...Deno.readDirSync(`${home}/Maildir/new`)];
        assertEquals(files.length, 1);
        assertEquals((await Deno.stat(`${home}/Maildir/new/${files[0].name}`)).uid, NOBODY);
        // The user makes ~/Mbox2 a link to a root-only file: the kernel stops the write.
        await Deno.writeTextFile(`${dir}/secret2`, "root's\n", { mode: 0o600 });
        await Deno.symlink(`${dir}/secret2`, `${home}/Mbox2`);
        await chownLink(`${home}/Mbox2`, NOBODY);
        const bad = await deliver(`home_mailbox = Mbox2\n`);
        assertEquals(bad.status, "bounced", JSON.stringify(bad));
        assertEquals(await Deno.readTextFile(`${dir}/secret2`), "root's\n");
        // Even a root-owned link (trusted by safe_open) is opened with the user's rights.
        await Deno.remove(`${home}/Mbox2`);
        await Deno.symlink(`${dir}/secret2`, `${home}/Mbox2`);
        const viaRootLink = await deliver(`home_mailbox = Mbox2\n`);
        assertEquals(viaRootLink.status, "bounced", JSON.stringify(viaRootLink));
        assert(
          viaRootLink.reason.includes("Permission denied"),
          JSON.stringify(viaRootLink),
        );
        assertEquals(await Deno.readTextFile(`${dir}/secret2`), "root's\n");
      },
    );
    await t.step("a user without an account is unknown", async () => {
      const r = await deliverToMailbox(env(`home_mailbox = Mailbox\n`), {
        user: "ghost",
        address: "ghost@here",
        sender: "a@x",
        delivered: "ghost@here",
      });
      assertEquals(r, "unknown");
    });
    await t.step("strict_mailbox_ownership defers a mailbox the user does not own", async () => {
      const spool = `${dir}/sticky3`;
      await Deno.mkdir(spool);
      await Deno.chmod(spool, 0o1777);
      await Deno.writeTextFile(`${spool}/nobody`, "");
      await Deno.chmod(`${spool}/nobody`, 0o666);
      await Deno.chown(`${spool}/nobody`, DAEMON, DAEMON);
      const r = await deliver(`mail_spool_directory = ${spool}\n`);
      assertEquals(r, {
        status: "deferred",
        dsn: "4.2.0",
        reason: `cannot update mailbox ${spool}/nobody for user nobody. ` +
          `destination ${spool}/nobody is not owned by recipient`,
      });
      assert(warnings.some((w) => w.includes("strict_mailbox_ownership = no")));
    });
    await t.step(
      "commands run as default_privs (aliases) or the recipient; root's as default_privs",
      async () => {
        const out = `${dir}/cmdout`;
        await Deno.mkdir(out);
        await Deno.chmod(out, 0o1777);
        await Deno.writeTextFile(
          `${dir}/passwd`,
          `nobody:x:${NOBODY}:${NOBODY}::${home}:/bin/sh\ndaemon:x:${DAEMON}:${DAEMON}::/:/bin/sh\n` +
            `root:x:0:0::/root:/bin/sh\n`,
        );
        const special = (mainCf: string): SpecialEnv => ({
          ...env(mainCf),
          passwd: new PasswdFile(`${dir}/passwd`),
        });
        const d = { address: "list@here", sender: "a@x", delivered: "list@here" };
        const ids = async (account: string | null, name: string) => {
          const r = await deliverToCommand(special(""), {
            ...d,
            account,
            command: `id -u > ${out}/${name}; id -g >> ${out}/${name}; id -G >> ${out}/${name}`,
          });
          assertEquals(r.status, "sent", JSON.stringify(r));
          return (await Deno.readTextFile(`${out}/${name}`)).trim().split("\n");
        };
        assertEquals(await ids(null, "alias"), [`${NOBODY}`, `${NOBODY}`, `${NOBODY}`]);
        assertEquals(await ids("daemon", "user"), [`${DAEMON}`, `${DAEMON}`, `${DAEMON}`]);
        assertEquals(await ids("root", "root"), [`${NOBODY}`, `${NOBODY}`, `${NOBODY}`]);
        // An alias file is written by default_privs too: root's files stay out of reach.
        const f = await deliverToFile(special(""), { ...d, account: null, path: `${dir}/secret` });
        assertEquals(f.status, "bounced", JSON.stringify(f));
        assertEquals(await Deno.readTextFile(`${dir}/secret`), "root's\n");
      },
    );
    await t.step(
      ".forward is read as the user; someone else's is ignored; :include: gives its owner's rights",
      async () => {
        const special = (mainCf: string): SpecialEnv => ({
          ...env(mainCf),
          passwd: new PasswdFile(`${dir}/passwd`),
          warn: (w) => warnings.push(w),
        });
        const fwd = `${home}/.forward`;
        await Deno.writeTextFile(fwd, "|/bin/true\n");
        await Deno.chown(fwd, NOBODY, NOBODY);
        const found = await forwardFor(special(""), "nobody@here", "nobody");
        assert(found && !("status" in found), JSON.stringify(found));
        assertEquals([found.content, found.account], ["|/bin/true\n", "nobody"]);
        await Deno.chown(fwd, DAEMON, DAEMON);
        assertEquals(await forwardFor(special(""), "nobody@here", "nobody"), null);
        assert(
          warnings.some((w) => w === `file ${fwd} has bad owner uid ${DAEMON}`),
          warnings.join("\n"),
        );
        // A symlink is "not a regular file", whoever owns it.
        await Deno.remove(fwd);
        await Deno.writeTextFile(`${dir}/rootonly`, "|/bin/false\n", { mode: 0o600 });
        await Deno.symlink(`${dir}/rootonly`, fwd);
        assertEquals(await forwardFor(special(""), "nobody@here", "nobody"), null);
        await Deno.remove(fwd);
        const inc = `${dir}/members.inc`;
        await Deno.writeTextFile(inc, "a@remote\n", { mode: 0o644 });
        await Deno.chown(inc, DAEMON, DAEMON);
        assertEquals(await includeFor(special(""), inc, null), {
          content: "a@remote\n",
          account: "daemon",
        });
        await Deno.chown(inc, 0, 0);
        await Deno.chmod(inc, 0o600);
        // Root's file, named by a (root-owned) alias: read as root; what it names gets default_privs.
        assertEquals(await includeFor(special(""), inc, null), {
          content: "a@remote\n",
          account: null,
        });
        // Named in nobody's .forward, it is read with nobody's rights: refused.
        const denied = await includeFor(special(""), inc, "nobody");
        assertEquals(denied, {
          status: "bounced",
          dsn: "5.3.5",
          reason: "mail system configuration error",
        });
        assert(
          warnings.some((w) => w.startsWith(`cannot open include file ${inc}`)),
          warnings.join("\n"),
        );
        // Root's own .forward is read too (by a writer process running as root).
        await Deno.writeTextFile(`${dir}/passwd`, `root:x:0:0::${home}:/bin/sh\n`);
        await Deno.writeTextFile(`${home}/.forward`, "a@remote\n");
        await Deno.chown(`${home}/.forward`, 0, 0);
        const rootFwd = await forwardFor(special(""), "root@here", "root");
        assert(rootFwd && !("status" in rootFwd), JSON.stringify(rootFwd));
        assertEquals(rootFwd.content, "a@remote\n");
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function chownLink(path: string, uid: number): Promise<void> {
  const r = await new Deno.Command("chown", { args: ["-h", `${uid}:${uid}`, path] }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
}
