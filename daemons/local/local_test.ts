/**
 * Tests for local delivery: Maildir files (headers, CRLF to LF, one file
 * per recipient), forwarding loops, bad user names, unsupported mailbox
 * settings, file system errors, the request protocol end to end, and
 * aliases end to end (mailboxes, forwarding through a fake cleanup, log
 * lines, deferrals).
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
import { fakeCleanup } from "../../tests/helpers/fake_cleanup.ts";
import { fakeService, writeQueueFile } from "../../tests/helpers/fake_service.ts";
import { deliverLocal } from "./local.ts";
import { mailboxUser, maildirName, UnknownUserError } from "../../lib/maildir/mod.ts";

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
        "Return-Path: <a@example.org>\nX-Original-To: Joe@mx.example.com\n" +
          "Delivered-To: Joe@mx.example.com\n" +
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
        texts.map((x) => x.split("\n")[2]).sort(),
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
          'Return-Path: <"a b??X-Evil: yes"@example.org>\nX-Original-To: "Joe Smith"@x\n' +
            'Delivered-To: "Joe Smith"@x\n' +
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
      "defers mbox settings it cannot honour and alias tables that cannot be opened, saying why",
      async () => {
        const cases: [string, string][] = [
          [
            `mail_spool_directory = ${root}/g/mail\nalias_maps =\nlocal_recipient_maps =`,
            "mailbox_delivery_lock: fcntl locking is not supported",
          ],
          [
            `mail_spool_directory = ${root}/g/mail\nmailbox_size_limit = 1000\nalias_maps =\nlocal_recipient_maps =`,
            "mailbox_size_limit is smaller than message_size_limit",
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

Deno.test("aliases through the local service", async (t) => {
  const root = await Deno.makeTempDir();
  const cf = (dir: string, aliases: string) =>
    `mail_spool_directory = ${root}/${dir}/mail/\nlocal_recipient_maps =\n` +
    `alias_maps = ${aliases}`;
  /** Runs one request with a fake cleanup answering `verdict`. */
  async function run(
    dir: string,
    aliases: string,
    rcpts: string[],
    opts: { content?: string; verdict?: "ok" | "error" } = {},
  ) {
    const s = await setup(`${root}/${dir}`, cf(dir, aliases), opts.content ?? MESSAGE, rcpts);
    const cleanup = fakeCleanup(
      s.ctx.queue.privateSocket("cleanup"),
      s.ctx.queue.dir("maildrop"),
      () =>
        opts.verdict === "error"
          ? { status: "error", code: 451, dsn: "4.3.0", text: "Error: queue file write error" }
          : { status: "ok", queueId: "" },
    );
    try {
      const st = await deliver(s);
      return { ...s, st, got: cleanup.got };
    } finally {
      cleanup.server.close();
      await cleanup.server.done;
    }
  }
  const newFiles = async (dir: string, user: string) => {
    const d = `${root}/${dir}/mail/${user}/new`;
    return await Promise.all((await listDir(d)).map((f) => Deno.readTextFile(`${d}/${f}`)));
  };

  try {
    await t.step(
      "alice: bob and a remote address: Maildir, forwarded copy, log lines",
      async () => {
        const r = await run("a", "inline:{{alice=bob, carol@remote.example}}", [
          "alice@mx.example.com",
        ]);
        assertEquals(r.st, [{
          index: 0,
          status: "sent",
          dsn: "2.0.0",
          reason: "forwarded as CLEANUP1",
          relay: "local",
        }]);
        const [text] = await newFiles("a", "bob");
        assert(
          text.startsWith(
            "Return-Path: <a@example.org>\nX-Original-To: alice@mx.example.com\n" +
              "Delivered-To: alice@mx.example.com\nSubject: hi\n",
          ),
          text,
        );
        assertEquals(await listDir(`${root}/a/mail`), ["bob"], "no mailbox for alice");
        assertEquals(r.got.length, 1);
        assertEquals(r.got[0].envelope.sender, "a@example.org");
        assertEquals(r.got[0].envelope.recipients, [
          { address: "carol@remote.example", orcpt: "alice@mx.example.com" },
        ]);
        assertMatch(
          r.got[0].content,
          /^Received: by mx\.example\.com \(Postwarden\)\r\n\tid CLEANUP1; \w{3}, [ \d]\d \w{3} \d{4} [\d:]{8} [+-]\d{4}.*\r\nDelivered-To: alice@mx\.example\.com\r\nSubject: hi\r\n/,
        );
        assert(r.got[0].content.endsWith(MESSAGE), "original content follows unchanged");
        const log = r.lines.join("\n");
        assertMatch(
          log,
          /to=<bob@mx\.example\.com>, orig_to=<alice@mx\.example\.com>, relay=local, .*status=sent \(delivered to maildir\)/,
        );
        assertMatch(
          log,
          /to=<alice@mx\.example\.com>, relay=local, .*dsn=2\.0\.0, status=sent \(forwarded as CLEANUP1\)/,
        );
      },
    );

    await t.step("two recipients: one forwarded message each (own Delivered-To)", async () => {
      const r = await run(
        "b",
        "inline:{a1=x@remote.example, a2=x@remote.example}",
        ["a1@mx.example.com", "a2@mx.example.com", "plain@mx.example.com"],
      );
      assertEquals(r.st.map((x) => x.status), ["sent", "sent", "sent"]);
      assertEquals(r.got.map((g) => /Delivered-To: (\S+)/.exec(g.content)?.[1]), [
        "a1@mx.example.com",
        "a2@mx.example.com",
      ]);
      assertEquals((await newFiles("b", "plain")).length, 1);
    });

    await t.step("a list with an owner- alias: its own message, sent from owner-list", async () => {
      const r = await run(
        "g",
        "inline:{{top=list, x@remote.example}, list=y@remote.example, owner-list=admin}",
        ["top@mx.example.com"],
      );
      assertEquals(r.st[0].reason, "forwarded as CLEANUP1");
      assertEquals(
        r.got.map((g) => [g.envelope.sender, g.envelope.recipients.map((x) => x.address)]),
        [
          ["owner-list@mx.example.com", ["y@remote.example"]],
          ["a@example.org", ["x@remote.example"]],
        ],
      );
      assertEquals(r.got[0].envelope.recipients[0].orcpt, undefined, "a list starts afresh");
      const sent = r.lines.filter((l) => /to=<top@mx\.example\.com>.*forwarded as/.test(l));
      assertEquals(sent.length, 2, "one line per forwarded message");
    });

    await t.step("cleanup refuses: the recipient is deferred, not marked done", async () => {
      const r = await run("c", "inline:{{alice=bob, carol@remote.example}}", [
        "alice@mx.example.com",
      ], { verdict: "error" });
      assertEquals([r.st[0].status, r.st[0].dsn], ["deferred", "4.3.0"]);
      assertStringIncludes(
        r.st[0].reason,
        "unable to forward message: cleanup: 451 4.3.0 Error: queue file write error",
      );
      assertMatch(r.lines.join("\n"), /to=<alice@mx\.example\.com>, .*status=deferred/);
    });

    await t.step(
      "a |command that fails temporarily defers the recipient, nothing is forwarded",
      async () => {
        const r = await run(
          "d",
          'inline:{{alice="|echo busy; exit 75", carol@remote.example, bob}}',
          ["alice@mx.example.com"],
        );
        assertEquals(r.st, [{
          index: 0,
          status: "deferred",
          dsn: "4.3.0",
          reason: "temporary failure. Command output: busy ",
          relay: "local",
        }]);
        assertEquals(r.got, [], "no forwarded copy while the recipient is retried");
        assertMatch(
          r.lines.join("\n"),
          /to=<alice@mx\.example\.com>, relay=local, .*dsn=4\.3\.0, status=deferred \(temporary failure/,
        );
      },
    );

    await t.step("an alias looping back through Delivered-To bounces", async () => {
      const looped = "Delivered-To: alice@mx.example.com\r\nSubject: l\r\n\r\nb\r\n";
      const r = await run("e", "inline:{alice=carol@remote.example}", ["alice@mx.example.com"], {
        content: looped,
      });
      assertEquals([r.st[0].status, r.st[0].dsn], ["bounced", "5.4.6"]);
      assertEquals(r.got, []);
    });

    await t.step("an alias table that cannot answer defers with Postfix's text", async () => {
      const r = await run("f", "fail:aliases", ["alice@mx.example.com"]);
      assertEquals(r.st[0], {
        index: 0,
        status: "deferred",
        dsn: "4.3.0",
        reason: "alias database unavailable",
        relay: "local",
      });
      assert(r.lines.some((l) => l.startsWith("warning:") && l.includes("fail:aliases")));
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
