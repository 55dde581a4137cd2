/**
 * Tests for .forward files and :include: files through the local service
 * (alias.ts, special.ts, user_files.ts): what a .forward can name
 * (commands, files, ~/files, other addresses sent on as new mail, the
 * user herself), forward_path with an extension, the files Postfix
 * ignores with a warning (someone else's, world-writable, a symlink; a
 * group-writable one is used, as in Postfix), allow_mail_to_* for the
 * forward class, and :include: files (addresses sent on as new mail,
 * relative and world-writable files refused). The .forward belongs to
 * the user the test runs as (an unprivileged local reads only that user's).
 */
import { exists } from "../../tests/helpers/fs.ts";
import type { DeliveryRecipient, DeliveryRequest } from "../../lib/deliver/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { fakeCleanup } from "../../tests/helpers/fake_cleanup.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { deliverLocal } from "./local.ts";

const MESSAGE = "Subject: hi\r\n\r\nbody\r\n";

Deno.test(".forward and :include: files", async (t) => {
  const root = await Deno.makeTempDir();
  await Deno.chmod(root, 0o755);
  const home = `${root}/home/joe`;
  await Deno.mkdir(home, { recursive: true });
  const uid = Deno.uid() ?? 0;
  await Deno.writeTextFile(`${root}/passwd`, `joe:x:${uid}:${uid}::${home}:/bin/sh\n`);
  const passwd = new PasswdFile(`${root}/passwd`);
  const spool = `${root}/mail/`;
  const base = `mail_spool_directory = ${spool}\nlocal_recipient_maps =\nrecipient_delimiter = +\n`;
  let n = 0;
  async function run(mainCf: string, rcpt: string) {
    const dir = `${root}/q${++n}`;
    const svc = await fakeService("local", dir, { mainCf: base + mainCf });
    const q = await writeQueueFile(
      svc.ctx.queue.dir("active"),
      { sender: "a@example.org" },
      [{ address: rcpt }],
      MESSAGE,
    );
    const req: DeliveryRequest = {
      op: "deliver",
      queueId: q.queueId,
      path: q.path,
      sender: "a@example.org",
      transport: "local",
      nexthop: "mx.example.com",
      recipients: [{ index: 0, address: rcpt } as DeliveryRecipient],
      arrival: Date.now(),
      activeAt: Date.now(),
    };
    const cleanup = fakeCleanup(
      svc.ctx.queue.privateSocket("cleanup"),
      svc.ctx.queue.dir("maildrop"),
    );
    const file = await QueueFile.open(q.path);
    try {
      const st = await deliverLocal(req, file, svc.ctx, { passwd });
      return { st: st[0], lines: svc.lines, got: cleanup.got };
    } finally {
      file.close();
      cleanup.server.close();
      await cleanup.server.done;
    }
  }
  const forward = async (text: string, mode = 0o644, name = ".forward") => {
    await Deno.remove(`${home}/${name}`).catch(() => {});
    await Deno.writeTextFile(`${home}/${name}`, text);
    await Deno.chmod(`${home}/${name}`, mode);
  };
  const mailbox = async () => {
    try {
      return (await Array.fromAsync(Deno.readDir(`${spool}joe/new`))).length;
    } catch {
      return 0;
    }
  };
  try {
    await t.step("commands, files, ~/files, others sent on, and the user herself", async () => {
      await forward(
        `# my forwarding\n"|cat > ${root}/cmd.out", ${root}/copy.mbox\n~/inhome.mbox, ` +
          `bob@remote.example, \\joe\n`,
      );
      const r = await run(
        "alias_maps =\nmailbox_delivery_lock = flock, dotlock\n",
        "joe@mx.example.com",
      );
      assertEquals(r.st.status, "sent", JSON.stringify(r));
      assert((await Deno.readTextFile(`${root}/cmd.out`)).includes("Subject: hi\n"));
      assert(
        (await Deno.readTextFile(`${root}/copy.mbox`)).includes(
          "Delivered-To: joe@mx.example.com\n",
        ),
      );
      assert((await Deno.readTextFile(`${home}/inhome.mbox`)).includes("\nbody\n"));
      assertEquals(r.got.length, 1, "bob sent on as new mail");
      assertEquals(r.got[0].envelope.recipients.map((x) => x.address), ["bob@remote.example"]);
      assertEquals(await mailbox(), 1, "\\joe: her own mailbox");
    });
    await t.step("forward_path with an extension picks .forward+ext", async () => {
      await forward(`"|cat > ${root}/ext.out"\n`, 0o644, ".forward+lists");
      const r = await run("alias_maps =\n", "joe+lists@mx.example.com");
      assertEquals(r.st.status, "sent", JSON.stringify(r));
      assert(await exists(`${root}/ext.out`));
      await Deno.remove(`${home}/.forward+lists`);
    });
    await t.step("a world-writable .forward or a symlink is ignored with a warning", async () => {
      const before = await mailbox();
      await forward(`"|touch ${root}/ww"\n`, 0o666);
      const r = await run("alias_maps =\n", "joe@mx.example.com");
      assertEquals(r.st.status, "sent");
      assert(!(await exists(`${root}/ww`)));
      assert(
        r.lines.some((l) =>
          l.includes(`warning:`) && l.includes(`file ${home}/.forward is world writable`)
        ),
      );
      await Deno.remove(`${home}/.forward`);
      await Deno.writeTextFile(`${root}/elsewhere`, `"|touch ${root}/ln"\n`);
      await Deno.symlink(`${root}/elsewhere`, `${home}/.forward`);
      const s = await run("alias_maps =\n", "joe@mx.example.com");
      assert(!(await exists(`${root}/ln`)));
      assert(s.lines.some((l) => l.includes(`file ${home}/.forward is not a regular file`)));
      assertEquals(await mailbox(), before + 2, "both went to the mailbox");
      await Deno.remove(`${home}/.forward`);
    });
    await t.step(
      "a .forward someone else owns is ignored; group-writable is used (as Postfix)",
      async () => {
        await forward(`"|touch ${root}/gw"\n`, 0o664);
        await run("alias_maps =\n", "joe@mx.example.com");
        assert(await exists(`${root}/gw`), "group-writable .forward used");
        if (uid === 0) {
          await forward(`"|touch ${root}/other"\n`);
          await Deno.chown(`${home}/.forward`, 65534, 65534);
          const r = await run("alias_maps =\n", "joe@mx.example.com");
          assert(!(await exists(`${root}/other`)));
          assert(r.lines.some((l) => l.includes(`file ${home}/.forward has bad owner uid 65534`)));
        } else {
          console.warn("SKIPPED: a .forward owned by another user needs root to create");
        }
        await Deno.remove(`${home}/.forward`);
      },
    );
    await t.step("allow_mail_to_commands without forward refuses a .forward command", async () => {
      await forward(`"|touch ${root}/nope"\n`);
      const r = await run("alias_maps =\nallow_mail_to_commands = alias\n", "joe@mx.example.com");
      assertEquals([r.st.status, r.st.dsn, r.st.reason], [
        "bounced",
        "5.7.1",
        "mail to command is restricted",
      ]);
      assert(!(await exists(`${root}/nope`)));
      await Deno.remove(`${home}/.forward`);
    });
    await t.step(":include: files: addresses sent on, commands run; bad ones refused", async () => {
      const restricted = async () => {
        const r = await run(
          `alias_maps = inline:{{list=:include:${root}/list.inc}}\n`,
          "list@mx.example.com",
        );
        assertEquals([r.st.status, r.st.reason], ["bounced", "mail to command is restricted"]);
      };
      await Deno.writeTextFile(
        `${root}/list.inc`,
        `# members\nann@remote.example, joe\n"|cat > ${root}/inc.out"\n`,
      );
      await Deno.chmod(`${root}/list.inc`, 0o644);
      // Commands in :include: files need the "include" class (Postfix's default leaves it out).
      const r = await run(
        `alias_maps = inline:{{list=:include:${root}/list.inc}}\n` +
          "allow_mail_to_commands = alias, forward, include\n",
        "list@mx.example.com",
      );
      assertEquals(r.st.status, "sent", JSON.stringify(r));
      assertEquals(
        r.got.flatMap((g) => g.envelope.recipients.map((x) => x.address)).sort(),
        ["ann@remote.example", "joe@mx.example.com"],
        "local members too are sent on as new mail",
      );
      assert(await exists(`${root}/inc.out`));
      await restricted();
      const rel = await run(
        "alias_maps = inline:{{list=:include:list.inc}}\n",
        "list@mx.example.com",
      );
      assertEquals([rel.st.status, rel.st.dsn, rel.st.reason], [
        "bounced",
        "5.3.5",
        "mail system configuration error",
      ]);
      await Deno.chmod(`${root}/list.inc`, 0o666);
      const ww = await run(
        `alias_maps = inline:{{list=:include:${root}/list.inc}}\n`,
        "list@mx.example.com",
      );
      assertEquals([ww.st.status, ww.st.dsn], ["bounced", "5.3.5"]);
      assert(ww.lines.some((l) => l.includes(`:include: file ${root}/list.inc is world writable`)));
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
