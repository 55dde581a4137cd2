/**
 * Tests for mailbox delivery through the local service (mailbox.ts with
 * local.ts): mbox files in the spool and under home directories with
 * their log lines, Maildir under home_mailbox, a symlink at the mailbox
 * path, unknown users and luser_relay (also for names that
 * local_recipient_maps does not list), and the $name expansion of
 * luser_relay (expand.ts). Runs as any user: writes are this process's.
 */
import type { DeliveryRecipient, DeliveryRequest } from "../../lib/deliver/mod.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { MailboxError } from "../../lib/mailbox/mbox.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { localExpand, recipientAttributes } from "./expand.ts";
import { deliverLocal } from "./local.ts";
import { deliverToMailbox, inProcessWriter, type MailboxEnv } from "./mailbox.ts";

const MESSAGE = "Subject: hi\r\nFrom: a@example.org\r\n\r\nFrom me\r\nline two\r\n";
const LOCKS = "mailbox_delivery_lock = flock, dotlock\n";

async function run(root: string, mainCf: string, rcpts: string[], passwd?: PasswdFile) {
  const svc = await fakeService("local", root, { mainCf });
  const recipients = rcpts.map((address) => ({ address }));
  const q = await writeQueueFile(
    svc.ctx.queue.dir("active"),
    { sender: "a@example.org" },
    recipients,
    MESSAGE,
  );
  const req: DeliveryRequest = {
    op: "deliver",
    queueId: q.queueId,
    path: q.path,
    sender: "a@example.org",
    transport: "local",
    nexthop: "mx.example.com",
    recipients: recipients.map((r, index): DeliveryRecipient => ({ index, address: r.address })),
    arrival: Date.now(),
    activeAt: Date.now(),
  };
  const file = await QueueFile.open(q.path);
  try {
    const st = await deliverLocal(req, file, svc.ctx, { passwd });
    return { st, lines: svc.lines };
  } finally {
    file.close();
  }
}

Deno.test("local mailbox delivery", async (t) => {
  const root = await Deno.makeTempDir();
  await Deno.chmod(root, 0o755);
  const home = `${root}/home/joe`;
  await Deno.mkdir(home, { recursive: true });
  await Deno.writeTextFile(`${root}/passwd`, `joe:x:1000:1000::${home}:/bin/sh\n`);
  const passwd = new PasswdFile(`${root}/passwd`);
  try {
    await t.step("mbox in the spool: format and log line", async () => {
      const spool = `${root}/s1/mail`;
      await Deno.mkdir(spool, { recursive: true });
      const cf = `mail_spool_directory = ${spool}\n${LOCKS}alias_maps =\nlocal_recipient_maps =`;
      const r = await run(`${root}/s1`, cf, ["Joe@mx.example.com"]);
      assertEquals(r.st[0].status, "sent");
      const text = await Deno.readTextFile(`${spool}/joe`);
      assertMatch(text, /^From a@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/);
      assert(
        text.endsWith(
          "Return-Path: <a@example.org>\nX-Original-To: Joe@mx.example.com\n" +
            "Delivered-To: Joe@mx.example.com\nSubject: hi\nFrom: a@example.org\n\n" +
            ">From me\nline two\n\n",
        ),
        text,
      );
      assert(
        r.lines.some((l) =>
          /to=<Joe@mx\.example\.com>, relay=local, delay=.*, dsn=2\.0\.0, status=sent \(delivered to mailbox\)$/
            .test(l)
        ),
        r.lines.join("\n"),
      );
    });
    await t.step("a symlink at the mailbox path bounces, nothing written through it", async () => {
      const spool = `${root}/s2/mail`;
      await Deno.mkdir(spool, { recursive: true });
      await Deno.writeTextFile(`${root}/s2/target`, "");
      await Deno.symlink(`${root}/s2/target`, `${spool}/joe`);
      if (Deno.uid() === 0) {
        // Postfix trusts links root owns: make it a user's, as an attacker's would be.
        const c = await new Deno.Command("chown", { args: ["-h", "65534", `${spool}/joe`] })
          .output();
        assert(c.success);
      }
      const cf = `mail_spool_directory = ${spool}\n${LOCKS}alias_maps =\nlocal_recipient_maps =`;
      const r = await run(`${root}/s2`, cf, ["joe@mx.example.com"]);
      assertEquals(r.st[0].status, "bounced");
      assertEquals(r.st[0].dsn, "5.2.0");
      assertEquals(
        r.st[0].reason,
        `cannot update mailbox ${spool}/joe for user joe. file is a symbolic link`,
      );
      assertEquals(await Deno.readTextFile(`${root}/s2/target`), "");
    });
    await t.step("not root, a mailbox it may not write defers 4.2.0 with a warning", async () => {
      const warnings: string[] = [];
      const denied = () => {
        throw new MailboxError("cannot open file: Permission denied", "5.2.0", {
          cause: Object.assign(new Error("Permission denied"), { code: "EACCES" }),
        });
      };
      const env = (root: boolean): MailboxEnv => ({
        config: makeConfig("/etc/x", `mail_spool_directory = /nowhere\n${LOCKS}`),
        passwd,
        root,
        writer: { ...inProcessWriter, mbox: denied },
        content: () => (async function* () {})(),
        now: Date.now,
        warn: (w) => warnings.push(w),
      });
      const m = { user: "joe", address: "joe@x", sender: "a@x", delivered: "joe@x" };
      const r = await deliverToMailbox(env(false), m);
      assertEquals(r, {
        status: "deferred",
        dsn: "4.2.0",
        reason:
          "cannot update mailbox /nowhere/joe for user joe. cannot open file: Permission denied",
      });
      assert(warnings.some((w) => w.includes("local does not run as root")), warnings.join("\n"));
      // As root (writing as the user), it is the recipient's mailbox that refuses: Postfix bounces.
      const asRoot = await deliverToMailbox(env(true), m);
      assertEquals(asRoot !== "unknown" && [asRoot.status, asRoot.dsn], ["bounced", "5.2.0"]);
    });
    await t.step("home_mailbox: mbox file and Maildir under the passwd home", async () => {
      const cf = (hm: string) =>
        `mail_spool_directory = ${root}/unused\nhome_mailbox = ${hm}\n${LOCKS}alias_maps =\n` +
        `local_recipient_maps =`;
      const a = await run(`${root}/h1`, cf("Mailbox"), ["joe@mx.example.com"], passwd);
      assertEquals([a.st[0].status, a.st[0].reason], ["sent", "delivered to mailbox"]);
      assert((await Deno.readTextFile(`${home}/Mailbox`)).includes("\n>From me\n"));
      const b = await run(`${root}/h2`, cf("Maildir/"), ["joe@mx.example.com"], passwd);
      assertEquals([b.st[0].status, b.st[0].reason], ["sent", "delivered to maildir"]);
      assertEquals([...Deno.readDirSync(`${home}/Maildir/new`)].length, 1);
    });
    await t.step(
      "mailbox_size_limit: an mbox and a Maildir file over it bounce 5.2.2",
      async () => {
        const limits = "mailbox_size_limit = 100\nmessage_size_limit = 100\n";
        const spool = `${root}/z1/mail`;
        await Deno.mkdir(spool, { recursive: true });
        const a = await run(
          `${root}/z1`,
          `mail_spool_directory = ${spool}\n${LOCKS}${limits}alias_maps =\nlocal_recipient_maps =`,
          ["joe@mx.example.com"],
        );
        assertEquals([a.st[0].status, a.st[0].dsn, a.st[0].reason], [
          "bounced",
          "5.2.2",
          `cannot update mailbox ${spool}/joe for user joe. error writing message: File too large`,
        ]);
        assertEquals((await Deno.stat(`${spool}/joe`)).size, 0, "truncated back");
        const b = await run(
          `${root}/z2`,
          `mail_spool_directory = ${root}/z2/mail/\n${limits}alias_maps =\nlocal_recipient_maps =`,
          ["joe@mx.example.com"],
        );
        assertEquals([b.st[0].status, b.st[0].dsn], ["bounced", "5.2.2"]);
        assertEquals([...Deno.readDirSync(`${root}/z2/mail/joe/new`)], []);
        assertEquals([...Deno.readDirSync(`${root}/z2/mail/joe/tmp`)], [], "tmp/ file removed");
      },
    );
    await t.step("an unknown user bounces 5.1.1; luser_relay takes it instead", async () => {
      const cf = `home_mailbox = Mailbox\n${LOCKS}alias_maps =\nlocal_recipient_maps =\n` +
        `recipient_delimiter = +\n`;
      const a = await run(`${root}/u1`, cf, ["ghost@mx.example.com"], passwd);
      assertEquals(a.st[0], {
        index: 0,
        relay: "local",
        status: "bounced",
        dsn: "5.1.1",
        reason: 'unknown user: "ghost"',
      });
      const before = (await Deno.stat(`${home}/Mailbox`)).size;
      const b = await run(
        `${root}/u2`,
        cf + "luser_relay = joe+$user\n",
        ["Ghost+x@mx.example.com"],
        passwd,
      );
      assertEquals([b.st[0].status, b.st[0].reason], ["sent", "delivered to mailbox"]);
      assert(
        b.lines.some((l) =>
          l.includes("to=<joe+ghost@mx.example.com>, orig_to=<Ghost+x@mx.example.com>")
        ),
        b.lines.join("\n"),
      );
      const text = await Deno.readTextFile(`${home}/Mailbox`);
      assert(text.length > before && text.includes("Delivered-To: Ghost+x@mx.example.com\n"));
    });
    await t.step("luser_relay also takes names local_recipient_maps does not list", async () => {
      const spool = `${root}/l1/mail`;
      await Deno.mkdir(spool, { recursive: true });
      const cf = `mail_spool_directory = ${spool}\n${LOCKS}alias_maps =\n` +
        `local_recipient_maps = inline:{joe=x}\nluser_relay = joe\n`;
      const r = await run(`${root}/l1`, cf, ["stranger@mx.example.com"]);
      assertEquals(r.st[0].status, "sent");
      assert((await Deno.readTextFile(`${spool}/joe`)).includes("X-Original-To: stranger@"));
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("localExpand", async (t) => {
  const attrs = recipientAttributes("Joe+List@Example.COM", "+", {
    home: "/home/joe",
    shell: "/bin/sh",
  }, "joe");
  await t.step("attributes, as local(8) names them", () => {
    assertEquals(
      localExpand("$user|$extension|$recipient_delimiter|$local|$domain|$home|$shell", attrs),
      "joe|List|+|Joe+List|Example.COM|/home/joe|/bin/sh",
    );
    assertEquals(localExpand("${extension?.forward+$extension}", attrs), ".forward+List");
    assertEquals(
      localExpand("${extension:none}", recipientAttributes("joe@x", "+", null, "joe")),
      "none",
    );
    assertEquals(localExpand("$myhostname", attrs), "", "main.cf names are not attributes");
  });
  await t.step("values are not expanded again; a filter masks what it does not list", () => {
    const hostile = recipientAttributes("a+$(user)`id`;x@h", "+", null, "a");
    assertEquals(localExpand("$extension", hostile), "$(user)`id`;x");
    assertEquals(
      localExpand("x $extension", hostile, "abcdefghijklmnopqrstuvwxyz"),
      "x __user__id__x",
    );
  });
});
