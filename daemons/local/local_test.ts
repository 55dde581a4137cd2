/**
 * Tests for local delivery: Maildir files (headers, CRLF to LF, one file
 * per recipient), forwarding loops, bad user names, unsupported mailbox
 * settings, file system errors, and the request protocol end to end.
 */
import {
  type DeliveryRecipient,
  type DeliveryRequest,
  type DeliveryResult,
  serveDelivery,
} from "../../lib/deliver/mod.ts";
import { ipcListen, ipcRequest } from "../../lib/ipc/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { deliverLocal } from "./local.ts";
import { mailboxUser, maildirName, UnknownUserError } from "./maildir.ts";

const MESSAGE = "Subject: hi\r\nFrom: a@example.org\r\n\r\nline one\r\nline two\r\n";

async function setup(
  root: string,
  mainCf: string,
  content = MESSAGE,
  rcpts: string[] = [],
  sender = "a@example.org",
) {
  const svc = await fakeService("local", root, { mainCf });
  const recipients = rcpts.map((address) => ({ address }));
  const q = await writeQueueFile(svc.ctx.queue.dir("active"), { sender }, recipients, content);
  const req: DeliveryRequest = {
    op: "deliver",
    queueId: q.queueId,
    path: q.path,
    sender,
    transport: "local",
    nexthop: "mx.example.com",
    recipients: recipients.map((r, index): DeliveryRecipient => ({ index, address: r.address })),
    arrival: Date.now(),
    activeAt: Date.now(),
  };
  return { ...svc, req };
}

async function deliver(s: Awaited<ReturnType<typeof setup>>) {
  const file = await QueueFile.open(s.req.path);
  try {
    return await deliverLocal(s.req, file, s.ctx);
  } finally {
    file.close();
  }
}

async function listDir(path: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(path)) out.push(e.name);
  return out.sort();
}

Deno.test("mailboxUser", async (t) => {
  await t.step("lowercases and strips the extension at the first delimiter", () => {
    assertEquals(mailboxUser("Joe", ""), "joe");
    assertEquals(mailboxUser("joe+list", "+"), "joe");
    assertEquals(mailboxUser("joe-a+b", "+-"), "joe");
    assertEquals(mailboxUser("joe+list", ""), "joe+list");
    assertEquals(mailboxUser("+joe", "+"), "+joe", "a leading delimiter is not an extension");
  });
  await t.step("refuses names that could leave the spool or hide", () => {
    for (const bad of ["", ".joe", "..", "a/b", "../etc", "a\nb", "a\0b"]) {
      let err: unknown = null;
      try {
        mailboxUser(bad, "");
      } catch (e) {
        err = e;
      }
      assert(err instanceof UnknownUserError, `rejects ${JSON.stringify(bad)}`);
    }
  });
});

Deno.test("maildirName is unique and escapes / and :", () => {
  const a = maildirName("h/o:st", 1_700_000_000_123, 42);
  const b = maildirName("h/o:st", 1_700_000_000_123, 42);
  assertMatch(a, /^1700000000\.42_\d+\.h\\057o\\072st$/);
  assert(a !== b);
});

Deno.test("local delivery to Maildir", async (t) => {
  const root = await Deno.makeTempDir();
  try {
    await t.step("writes Return-Path, Delivered-To and LF content into new/", async () => {
      const s = await setup(
        `${root}/a`,
        `mail_spool_directory = ${root}/a/mail/\nalias_maps =\nlocal_recipient_maps =`,
        MESSAGE,
        [
          "Joe@mx.example.com",
        ],
      );
      const st = await deliver(s);
      assertEquals(st, [{
        index: 0,
        status: "sent",
        dsn: "2.0.0",
        reason: "delivered to maildir",
        relay: "local",
      }]);
      const md = `${root}/a/mail/joe`;
      assertEquals(await listDir(md), ["cur", "new", "tmp"]);
      assertEquals(await listDir(`${md}/tmp`), []);
      const files = await listDir(`${md}/new`);
      assertEquals(files.length, 1);
      assertMatch(files[0], /^\d+\.\d+_\d+\.mx\.example\.com$/);
      const text = await Deno.readTextFile(`${md}/new/${files[0]}`);
      assertEquals(
        text,
        "Return-Path: <a@example.org>\nDelivered-To: Joe@mx.example.com\n" +
          "Subject: hi\nFrom: a@example.org\n\nline one\nline two\n",
      );
      assertEquals((await Deno.stat(md)).mode! & 0o777, 0o700);
      assertEquals((await Deno.stat(`${md}/new/${files[0]}`)).mode! & 0o777, 0o600);
      const log = s.lines.find((l) => l.includes("to=<Joe@mx.example.com>"));
      assert(log, "status is logged");
      assertMatch(
        log,
        /relay=local, delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(delivered to maildir\)$/,
      );
    });

    await t.step("one file per recipient; extensions go to the user's Maildir", async () => {
      const s = await setup(
        `${root}/b`,
        `mail_spool_directory = ${root}/b/mail/\nrecipient_delimiter = +\nalias_maps =\nlocal_recipient_maps =`,
        MESSAGE,
        ["joe@x", "joe+lists@x", "ann@x"],
      );
      const st = await deliver(s);
      assertEquals(st.map((x) => x.status), ["sent", "sent", "sent"]);
      assertEquals((await listDir(`${root}/b/mail/joe/new`)).length, 2);
      assertEquals((await listDir(`${root}/b/mail/ann/new`)).length, 1);
      const texts = await Promise.all(
        (await listDir(`${root}/b/mail/joe/new`)).map((f) =>
          Deno.readTextFile(`${root}/b/mail/joe/new/${f}`)
        ),
      );
      assertEquals(
        texts.map((x) => x.split("\n")[1]).sort(),
        ["Delivered-To: joe+lists@x", "Delivered-To: joe@x"],
      );
    });

    await t.step("keeps a bare CR and a CRLF split across content records", async () => {
      const big = "X-Pad: " + "p".repeat(64 * 1024 - 8) + "\r\n\r\nbody\rcr\r\n";
      const s = await setup(
        `${root}/c`,
        `mail_spool_directory = ${root}/c/mail/\nalias_maps =\nlocal_recipient_maps =`,
        big,
        [
          "joe@x",
        ],
      );
      assertEquals((await deliver(s))[0].status, "sent");
      const [f] = await listDir(`${root}/c/mail/joe/new`);
      const text = await Deno.readTextFile(`${root}/c/mail/joe/new/${f}`);
      assert(!text.includes("\r\n"), "no CRLF left");
      assert(text.endsWith("\n\nbody\rcr\n"));
    });

    await t.step("bounces a message already delivered to the recipient (loop)", async () => {
      const looped = "Delivered-To: JOE@x\r\nDelivered-To: <other@x>\r\nSubject: l\r\n\r\nb\r\n";
      const s = await setup(
        `${root}/d`,
        `mail_spool_directory = ${root}/d/mail/\nalias_maps =\nlocal_recipient_maps =`,
        looped,
        [
          "joe@x",
          "ann@x",
          "other@x",
        ],
      );
      const st = await deliver(s);
      assertEquals(st[0], {
        index: 0,
        status: "bounced",
        dsn: "5.4.6",
        reason: "mail forwarding loop for joe@x",
        relay: "local",
      });
      assertEquals(st[1].status, "sent");
      assertEquals(st[2].status, "bounced", "Delivered-To with angle brackets matches too");
      assertEquals(await listDir(`${root}/d/mail`), ["ann"]);
    });

    await t.step(
      "Return-Path and Delivered-To are quoted and cannot add header lines",
      async () => {
        const s = await setup(
          `${root}/q`,
          `mail_spool_directory = ${root}/q/mail/\nalias_maps =\nlocal_recipient_maps =`,
          MESSAGE,
          ["Joe Smith@x"],
          "a b\r\nX-Evil: yes@example.org",
        );
        assertEquals((await deliver(s))[0].status, "sent");
        const [f] = await listDir(`${root}/q/mail/joe smith/new`);
        const text = await Deno.readTextFile(`${root}/q/mail/joe smith/new/${f}`);
        assertEquals(
          text,
          'Return-Path: <"a b??X-Evil: yes"@example.org>\nDelivered-To: "Joe Smith"@x\n' +
            "Subject: hi\nFrom: a@example.org\n\nline one\nline two\n",
        );
        assertStringIncludes(s.lines.join("\n"), 'to=<"Joe Smith"@x>, relay=local');
      },
    );

    await t.step("a quoted Delivered-To is a loop for its recipient", async () => {
      const looped = 'Delivered-To: "joe smith"@x\r\nSubject: l\r\n\r\nb\r\n';
      const s = await setup(
        `${root}/r`,
        `mail_spool_directory = ${root}/r/mail/\nalias_maps =\nlocal_recipient_maps =`,
        looped,
        ["Joe Smith@x"],
      );
      const [st] = await deliver(s);
      assertEquals([st.status, st.dsn], ["bounced", "5.4.6"]);
      assertEquals(st.reason, 'mail forwarding loop for "Joe Smith"@x');
    });

    await t.step("Delivered-To in the body is not a loop", async () => {
      const body = "Subject: l\r\n\r\nDelivered-To: joe@x\r\n";
      const s = await setup(
        `${root}/e`,
        `mail_spool_directory = ${root}/e/mail/\nalias_maps =\nlocal_recipient_maps =`,
        body,
        [
          "joe@x",
        ],
      );
      assertEquals((await deliver(s))[0].status, "sent");
    });

    await t.step("bounces user names that cannot be a mailbox", async () => {
      const s = await setup(
        `${root}/f`,
        `mail_spool_directory = ${root}/f/mail/\nalias_maps =\nlocal_recipient_maps =`,
        MESSAGE,
        [
          ".hidden@x",
          "../../etc@x",
          "@x",
          "a/b@x",
        ],
      );
      const st = await deliver(s);
      for (const x of st) {
        assertEquals([x.status, x.dsn], ["bounced", "5.1.1"]);
        assertStringIncludes(x.reason, "unknown user");
      }
      assertEquals(await listDir(`${root}/f`), ["queue"], "nothing written");
    });

    await t.step(
      "defers mbox, home_mailbox and alias tables that cannot be opened, saying why",
      async () => {
        const cases: [string, string][] = [
          [
            `mail_spool_directory = ${root}/g/mail\nalias_maps =\nlocal_recipient_maps =`,
            "mbox delivery is not supported",
          ],
          [
            `mail_spool_directory = ${root}/g/mail/\nhome_mailbox = Maildir/\nalias_maps =\nlocal_recipient_maps =`,
            "home_mailbox is not supported",
          ],
          [
            `mail_spool_directory = ${root}/g/mail/\nalias_maps = nosuch:/etc/aliases\nlocal_recipient_maps =`,
            'alias database unavailable: alias_maps: table nosuch:/etc/aliases: lookup table type "nosuch" is not supported',
          ],
        ];
        for (const [i, [cf, why]] of cases.entries()) {
          const s = await setup(`${root}/g${i}`, cf, MESSAGE, ["joe@x"]);
          const [st] = await deliver(s);
          assertEquals([st.status, st.dsn], ["deferred", "4.3.0"]);
          assertStringIncludes(st.reason, why);
          assert(
            s.lines.some((l) => l.startsWith("warning:") && l.includes(why)),
            "warning logged",
          );
        }
        assert(!(await exists(`${root}/g/mail`)));
      },
    );

    await t.step("defers with the error text when the Maildir cannot be written", async () => {
      await Deno.mkdir(`${root}/h/mail`, { recursive: true });
      await Deno.writeTextFile(`${root}/h/mail/joe`, "not a directory");
      const s = await setup(
        `${root}/h`,
        `mail_spool_directory = ${root}/h/mail/\nalias_maps =\nlocal_recipient_maps =`,
        MESSAGE,
        [
          "joe@x",
          "ann@x",
        ],
      );
      const st = await deliver(s);
      assertEquals([st[0].status, st[0].dsn], ["deferred", "4.3.0"]);
      assertStringIncludes(st[0].reason, "maildir delivery failed:");
      assertStringIncludes(st[0].reason, `${root}/h/mail/joe`);
      assertEquals(st[1].status, "sent", "other recipients are not affected");
    });

    await t.step(
      "a name too long for the file system bounces 5.1.1 instead of deferring",
      async () => {
        const long = "a".repeat(300);
        const s = await setup(
          `${root}/k`,
          `mail_spool_directory = ${root}/k/mail/\nalias_maps =\nlocal_recipient_maps =`,
          MESSAGE,
          [`${long}@x`, "joe@x"],
        );
        const st = await deliver(s);
        assertEquals([st[0].status, st[0].dsn], ["bounced", "5.1.1"]);
        assertStringIncludes(st[0].reason, "maildir delivery failed:");
        assertStringIncludes(st[0].reason, "File name too long");
        assertEquals(st[1].status, "sent", "other recipients are not affected");
        assert(
          s.lines.some((l) => l.includes("dsn=5.1.1, status=bounced (maildir delivery failed:")),
          s.lines.join("\n"),
        );
      },
    );

    if (Deno.uid() !== 0) {
      await t.step("EACCES defers with 4.2.0", async () => {
        await Deno.mkdir(`${root}/i/mail`, { recursive: true, mode: 0o500 });
        const s = await setup(
          `${root}/i`,
          `mail_spool_directory = ${root}/i/mail/\nalias_maps =\nlocal_recipient_maps =`,
          MESSAGE,
          [
            "joe@x",
          ],
        );
        const [st] = await deliver(s);
        assertEquals([st.status, st.dsn], ["deferred", "4.2.0"]);
        await Deno.chmod(`${root}/i/mail`, 0o700);
      });
    }

    await t.step("serves a delivery request over IPC", async () => {
      const s = await setup(
        `${root}/j`,
        `mail_spool_directory = ${root}/j/mail/\nalias_maps =\nlocal_recipient_maps =`,
        MESSAGE,
        [
          "joe@x",
          ".bad@x",
        ],
      );
      const sock = s.ctx.queue.privateSocket("local");
      const server = ipcListen(
        sock,
        (c) => serveDelivery(c, s.ctx, (r, f, ctx) => deliverLocal(r, f, ctx)),
      );
      try {
        const res = await ipcRequest<DeliveryResult>(sock, s.req, { timeoutMs: 10_000 });
        assertEquals(res.recipients.map((r) => [r.index, r.status]), [[0, "sent"], [1, "bounced"]]);
      } finally {
        server.close();
        await server.done;
      }
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
