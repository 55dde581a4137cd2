/**
 * Tests for virtual delivery: Maildir files and their owner, Postfix's
 * texts for unknown users and bad uids, mbox deferred, links below the
 * base refused, paths that would leave it, the size limit, mail loops,
 * address verification (every lookup, nothing written).
 */
import type { DeliveryRecipient, DeliveryRequest } from "../../lib/deliver/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { deliverVirtual, mailboxPath, noLinksBelow, VirtualTables } from "./virtual.ts";

const MESSAGE = "Subject: hi\r\nFrom: a@example.org\r\n\r\nbody\r\n";
const ROOT = Deno.uid() === 0;

async function run(
  rcpts: string[],
  opts: {
    mainCf?: string;
    content?: string;
    prepare?: (base: string) => Promise<void>;
    lockAttempts?: number;
    verify?: true;
  } = {},
) {
  const root = await Deno.makeTempDir({ prefix: "virtual-test-" });
  const base = `${root}/vmail`;
  await Deno.mkdir(base);
  await opts.prepare?.(base);
  const svc = await fakeService("virtual", root, {
    mainCf: `virtual_mailbox_base = ${base}\n` +
      "virtual_mailbox_maps = inline:{ joe@v.example=v.example/joe/, " +
      "box@v.example=v.example/box, out@v.example=../x/, up@v.example=v.example/../../x/, " +
      "link@v.example=v.example/link/, deep@v.example=v.example/deep/sub/ }\n" +
      "virtual_uid_maps = inline:{ joe@v.example=5000, low@v.example=5, @v.example=5000 }\n" +
      "virtual_gid_maps = static:5001\n" +
      "recipient_delimiter = +\n" + (opts.mainCf ?? ""),
  });
  const q = await writeQueueFile(
    svc.ctx.queue.dir("active"),
    { sender: "a@example.org" },
    rcpts.map((address) => ({ address })),
    opts.content ?? MESSAGE,
  );
  const req: DeliveryRequest = {
    op: "deliver",
    queueId: q.queueId,
    path: q.path,
    sender: "a@example.org",
    transport: "virtual",
    nexthop: "v.example",
    recipients: rcpts.map((address, index): DeliveryRecipient => ({ index, address })),
    arrival: Date.now(),
    activeAt: Date.now(),
    ...(opts.verify ? { verify: opts.verify } : {}),
  };
  const tables = new VirtualTables(svc.ctx.config, svc.ctx.maps);
  const file = await QueueFile.open(q.path);
  try {
    const statuses = await deliverVirtual(req, file, svc.ctx, {
      tables,
      setOwner: ROOT,
      lockAttempts: opts.lockAttempts,
    });
    return { statuses, lines: svc.lines, base, root };
  } finally {
    file.close();
    await tables.close();
  }
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch {
    // missing
  }
  return out;
}

Deno.test("virtual delivery", async (t) => {
  await t.step("verification: lookups as for a delivery, nothing written", async () => {
    const r = await run(["joe@v.example", "box@v.example", "nobody@v.example"], {
      mainCf: "virtual_mailbox_lock = dotlock\n",
      verify: true,
    });
    assertEquals(r.statuses.map((s) => [s.status, s.dsn, s.reason, s.relay]), [
      ["sent", "2.0.0", "delivers to maildir", "virtual"],
      ["sent", "2.0.0", "delivers to mailbox", "virtual"],
      ["bounced", "5.1.1", 'unknown user: "nobody@v.example"', "virtual"],
    ]);
    assertMatch(
      r.lines.join("\n"),
      /to=<joe@v.example>, relay=virtual, delay=[\d.]+, delays=[\d./]+, dsn=2.0.0, status=deliverable \(delivers to maildir\)/,
    );
    assertMatch(
      r.lines.join("\n"),
      /to=<nobody@v.example>, relay=virtual, .*dsn=5.1.1, status=undeliverable \(unknown user/,
    );
    assertEquals(await files(r.base), [], "no mailbox created");
    await Deno.remove(r.root, { recursive: true });
  });
  await t.step("a Maildir, created for its owner; an extension finds the user", async () => {
    const r = await run(["joe+news@v.example"]);
    const st = r.statuses[0];
    assertEquals([st.status, st.dsn, st.reason, st.relay, st.action], [
      "sent",
      "2.0.0",
      "delivered to maildir",
      "virtual",
      "delivered",
    ]);
    const dir = `${r.base}/v.example/joe`;
    const names = await files(`${dir}/new`);
    assertEquals(names.length, 1);
    const text = await Deno.readTextFile(`${dir}/new/${names[0]}`);
    assertEquals(
      text,
      "Return-Path: <a@example.org>\nX-Original-To: joe+news@v.example\n" +
        "Delivered-To: joe+news@v.example\n" +
        "Subject: hi\nFrom: a@example.org\n\nbody\n",
    );
    if (ROOT) {
      for (const p of [`${r.base}/v.example`, dir, `${dir}/tmp`, `${dir}/new/${names[0]}`]) {
        const s = await Deno.lstat(p);
        assertEquals([s.uid, s.gid], [5000, 5001], p);
      }
    }
    assertMatch(
      r.lines.join("\n"),
      /to=<joe\+news@v.example>, relay=virtual, delay=[\d.]+, delays=[\d./]+, dsn=2.0.0, status=sent \(delivered to maildir\)/,
    );
  });
  await t.step("Postfix's texts: unknown user, uid problems", async () => {
    const r = await run(["nobody@v.example", "box@v.example", "joe@w.example"], {
      mainCf: "virtual_uid_maps = inline:{ box@v.example=5 }\n",
    });
    assertEquals(r.statuses.map((s) => [s.status, s.dsn, s.reason]), [
      ["bounced", "5.1.1", 'unknown user: "nobody@v.example"'],
      ["deferred", "4.3.0", "recipient box@v.example: bad uid 5 in virtual_uid_maps"],
      ["bounced", "5.1.1", 'unknown user: "joe@w.example"'],
    ]);
    const m = await run(["box@v.example", "joe@v.example"], {
      mainCf: "virtual_uid_maps = inline:{ box@v.example=5000 }\n",
    });
    assertEquals(m.statuses.map((s) => [s.status, s.dsn, s.reason]), [
      [
        "deferred",
        "4.3.5",
        "virtual_mailbox_lock = fcntl is not supported (Deno has no fcntl locks); " +
        "use dotlock, or flock, dotlock",
      ],
      ["deferred", "4.3.0", "recipient joe@v.example: uid not found in virtual_uid_maps"],
    ]);
  });
  await t.step("mbox: appended with From_, quoting and locks, for its owner", async () => {
    const content = "Subject: one\r\n\r\nFrom me\r\n";
    const r = await run(["box@v.example", "box@v.example"], {
      mainCf: "virtual_mailbox_lock = flock, dotlock\n",
      content,
      prepare: (base) => Deno.mkdir(`${base}/v.example`),
    });
    assertEquals(r.statuses.map((s) => [s.status, s.reason, s.action]), [
      ["sent", "delivered to mailbox", "delivered"],
      ["sent", "delivered to mailbox", "delivered"],
    ]);
    const box = `${r.base}/v.example/box`;
    const text = await Deno.readTextFile(box);
    const one = /^From a@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\n/.source +
      "Return-Path: <a@example\\.org>\\nX-Original-To: box@v\\.example\\n" +
      "Delivered-To: box@v\\.example\\n" +
      "Subject: one\\n\\n>From me\\n\\n";
    assertMatch(text, new RegExp(`^${one}${one.slice(1)}$`));
    const st = await Deno.lstat(box);
    assertEquals(st.mode! & 0o777, 0o600);
    if (ROOT) assertEquals([st.uid, st.gid], [5000, 5001]);
    assertEquals(await files(`${r.base}/v.example`), ["box"], "the dotlock is gone");
  });
  await t.step(
    "mbox: a held dotlock defers; a link, a hard link or a foreign file is refused",
    async () => {
      const outside = await Deno.makeTempDir({ prefix: "virtual-outside-" });
      await Deno.writeTextFile(`${outside}/target`, "keep\n");
      const held = await run(["box@v.example"], {
        mainCf: "virtual_mailbox_lock = dotlock\n",
        prepare: async (base) => {
          await Deno.mkdir(`${base}/v.example`);
          await Deno.writeTextFile(`${base}/v.example/box.lock`, "");
        },
        lockAttempts: 1,
      });
      assertEquals([held.statuses[0].status, held.statuses[0].dsn], ["deferred", "4.2.0"]);
      assertMatch(held.statuses[0].reason, /unable to lock .*box for exclusive access/);
      const linked = await run(["box@v.example"], {
        mainCf: "virtual_mailbox_lock = dotlock\n",
        prepare: async (base) => {
          await Deno.mkdir(`${base}/v.example`);
          await Deno.symlink(`${outside}/target`, `${base}/v.example/box`);
        },
      });
      assertMatch(linked.statuses[0].reason, /is a symbolic link; refusing to open it/);
      const hard = await run(["box@v.example"], {
        mainCf: "virtual_mailbox_lock = dotlock\n",
        prepare: async (base) => {
          await Deno.mkdir(`${base}/v.example`);
          await Deno.link(`${outside}/target`, `${base}/v.example/box`);
        },
      });
      assertMatch(hard.statuses[0].reason, /has 2 hard links; refusing to use it/);
      assertEquals(await Deno.readTextFile(`${outside}/target`), "keep\n", "untouched");
      if (ROOT) {
        const foreign = await run(["box@v.example"], {
          mainCf: "virtual_mailbox_lock = dotlock\n",
          prepare: async (base) => {
            await Deno.mkdir(`${base}/v.example`);
            await Deno.writeTextFile(`${base}/v.example/box`, "");
          },
        });
        assertMatch(foreign.statuses[0].reason, /is owned by uid 0, not 5000/);
      }
    },
  );
  await t.step(
    "mbox: over virtual_mailbox_limit bounces 5.2.2 and leaves the file as it was",
    async () => {
      const r = await run(["box@v.example"], {
        mainCf: "virtual_mailbox_lock = dotlock\nvirtual_mailbox_limit = 120\n",
        prepare: async (base) => {
          await Deno.mkdir(`${base}/v.example`);
          await Deno.writeTextFile(`${base}/v.example/box`, "From x\n\n");
          if (ROOT) await Deno.chown(`${base}/v.example/box`, 5000, 5001);
        },
      });
      assertEquals([r.statuses[0].status, r.statuses[0].dsn], ["bounced", "5.2.2"]);
      assertEquals(await Deno.readTextFile(`${r.base}/v.example/box`), "From x\n\n");
    },
  );
  await t.step("a symbolic link below the base is not followed", async () => {
    const outside = await Deno.makeTempDir({ prefix: "virtual-outside-" });
    const r = await run(["link@v.example", "deep@v.example"], {
      prepare: async (base) => {
        await Deno.mkdir(`${base}/v.example/deep`, { recursive: true });
        await Deno.symlink(outside, `${base}/v.example/link`);
        await Deno.symlink(outside, `${base}/v.example/deep/sub`);
      },
    });
    for (const st of r.statuses) {
      assertEquals([st.status, st.dsn], ["deferred", "4.2.0"]);
      assertMatch(st.reason, /is a symbolic link; refusing to deliver through it/);
    }
    assertEquals(await files(outside), [], "nothing was created outside the base");
    const swapped = await run(["joe@v.example"], {
      prepare: async (base) => {
        await Deno.mkdir(`${base}/v.example/joe`, { recursive: true });
        await Deno.symlink(outside, `${base}/v.example/joe/tmp`);
        await Deno.symlink(outside, `${base}/v.example/joe/new`);
      },
    });
    assertEquals(swapped.statuses[0].status, "deferred");
    assertEquals(await files(outside), [], "a linked tmp/ or new/ is refused too");
  });
  await t.step("a result leaving the base defers with a warning", async () => {
    const r = await run(["out@v.example", "up@v.example"]);
    for (const st of r.statuses) {
      assertEquals([st.status, st.dsn, st.reason], [
        "deferred",
        "4.3.5",
        "mail system configuration error",
      ]);
    }
    assertMatch(r.lines.join("\n"), /leaves virtual_mailbox_base: \.\.\/x\//);
    assertEquals(mailboxPath("/v", "/a/b/"), "/v/a/b/");
    assertEquals(mailboxPath("/v", "a/../b/"), null);
  });
  await t.step("virtual_mailbox_limit bounces 5.2.2; a Delivered-To loop 5.4.6", async () => {
    let r = await run(["joe@v.example"], { mainCf: "virtual_mailbox_limit = 50\n" });
    assertEquals([r.statuses[0].status, r.statuses[0].dsn], ["bounced", "5.2.2"]);
    assertEquals(await files(`${r.base}/v.example/joe/tmp`), [], "the partial file is removed");
    r = await run(["joe@v.example"], {
      content: "Delivered-To: Joe@V.example\r\nSubject: x\r\n\r\nb\r\n",
    });
    assertEquals([r.statuses[0].status, r.statuses[0].dsn, r.statuses[0].reason], [
      "bounced",
      "5.4.6",
      "mail forwarding loop for joe@v.example",
    ]);
  });
  await t.step("a relative or empty virtual_mailbox_base defers everything", async () => {
    const r = await run(["joe@v.example"], { mainCf: "virtual_mailbox_base = vmail\n" });
    assertEquals([r.statuses[0].status, r.statuses[0].dsn], ["deferred", "4.3.5"]);
    assertMatch(
      r.lines.join("\n"),
      /do not specify relative pathname: virtual_mailbox_base = vmail/,
    );
  });
  await t.step("the base itself may be a link (the admin's); below it none", async () => {
    const dir = await Deno.makeTempDir();
    await Deno.mkdir(`${dir}/real/x`, { recursive: true });
    await Deno.symlink(`${dir}/real`, `${dir}/base`);
    await noLinksBelow(`${dir}/base`, [`${dir}/base/x`]);
    await Deno.symlink("/tmp", `${dir}/real/y`);
    let err = "";
    await noLinksBelow(`${dir}/base`, [`${dir}/base/y/z`]).catch((e) => err = e.message);
    assert(err.includes(`${dir}/base/y is a symbolic link`), err);
  });
});
