/**
 * End-to-end tests of cleanup's rewriting and content checks, driven
 * through the cleanup service over its IPC protocol like smtpd and pickup
 * drive it, with inline: tables.
 */
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import { fakeService } from "../../tests/helpers/fake_service.ts";
import { type CleanupEnvelope, CleanupSession } from "../../lib/cleanup/client.ts";
import { ipcListen } from "../../lib/ipc/mod.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { CleanupService, localHeaderContext, logicalHeader } from "./cleanup.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const SMTP: CleanupEnvelope["attrs"] = {
  clientName: "client.example",
  clientAddr: "192.0.2.7",
  helo: "client.example",
  protocol: "ESMTP",
  origin: "smtpd",
};

async function setup(mainCf: string) {
  const root = await Deno.makeTempDir();
  const fake = await fakeService("cleanup", root, {
    mainCf:
      `myhostname = mx.test.example\nmyorigin = test.example\nmydestination = test.example\n${mainCf}`,
  });
  const notified: string[] = [];
  const svc = new CleanupService(fake.ctx, (ids) => {
    notified.push(...ids);
    return Promise.resolve();
  });
  const sock = `${root}/cleanup.sock`;
  const server = ipcListen(sock, (c) => svc.handle(c));
  /** Submits content in one frame, or in frames of `chunk` bytes. */
  const submit = async (env: CleanupEnvelope, content: string, chunk = 0) => {
    const s = await CleanupSession.open(sock);
    s.envelope(env);
    const bytes = enc.encode(content);
    if (chunk <= 0) await s.write(bytes);
    else {
      for (let i = 0; i < bytes.length; i += chunk) await s.write(bytes.subarray(i, i + chunk));
    }
    const r = await s.finish();
    await new Promise((r) => setTimeout(r, 5)); // let the qmgr wake-up run
    return { r, queueId: s.queueId };
  };
  const read = async (id: string, queue = "incoming") => {
    const f = await QueueFile.open(`${root}/queue/${queue}/${id}`);
    const out = {
      sender: f.envelope.sender,
      rcpts: f.head.recipients.map((r) =>
        r.address + (r.notify ? ` ${r.notify}` : "") + (r.orcpt ? ` orcpt=${r.orcpt}` : "")
      ),
      text: dec.decode(await f.readContent()),
    };
    f.close();
    return out;
  };
  const list = (queue: string) =>
    [...Deno.readDirSync(`${root}/queue/${queue}`)].map((e) => e.name);
  const filterOf = async (id: string) => {
    const f = await QueueFile.open(`${root}/queue/incoming/${id}`);
    f.close();
    return f.envelope.filter;
  };
  const done = async () => {
    await svc.close();
    server.close();
    await server.done;
    await Deno.remove(root, { recursive: true });
  };
  return { submit, read, list, filterOf, done, notified, lines: fake.lines, svc };
}

Deno.test("cleanup pipeline: canonical, masquerading, virtual aliases", async (t) => {
  const env = await setup([
    "sender_canonical_maps = inline:{ bob@test.example=robert@test.example }",
    "canonical_maps = inline:{ @old.example=@new.example }",
    "recipient_canonical_maps = inline:{ carol@test.example=caroline@test.example }",
    "masquerade_domains = test.example",
    "masquerade_exceptions = root, inline:{ admin=yes }",
    "recipient_delimiter = +",
    "virtual_alias_maps = inline:{ {list@v.example = a@r.example, b@r.example, a@r.example}," +
    " {b@r.example = b@r.example, archive@r.example}, {tag@v.example = tagged@r.example}," +
    " {local@v.example = bare} }",
  ].join("\n"));
  try {
    await t.step("envelope: sender canonical, recipient canonical, virtual expansion", async () => {
      const { r, queueId } = await env.submit(
        {
          sender: "bob",
          recipients: [
            { address: "carol" },
            { address: "list@v.example" },
            { address: "tag+x@v.example" },
            { address: "joe@old.example" },
            { address: "local@v.example" },
          ],
        },
        "From: bob\r\nTo: carol, joe@old.example\r\nSubject: t\r\n\r\nbody\r\n",
      );
      assertEquals(r.status, "ok");
      const q = await env.read(queueId);
      assertEquals(q.sender, "robert@test.example");
      assertEquals(q.rcpts, [
        "caroline@test.example orcpt=carol@test.example",
        "a@r.example orcpt=list@v.example",
        "b@r.example orcpt=list@v.example",
        "archive@r.example orcpt=list@v.example",
        "tagged+x@r.example orcpt=tag+x@v.example",
        "joe@new.example orcpt=joe@old.example",
        "bare@test.example orcpt=local@v.example",
      ]);
      // Local submission: header addresses are rewritten too (qualified, canonical).
      assertStringIncludes(q.text, "From: robert@test.example\r\n");
      assertStringIncludes(q.text, "To: caroline@test.example, joe@new.example\r\n");
      assert(env.notified.includes(queueId));
    });
    await t.step("NOTIFY=SUCCESS is not carried into an alias's expansion", async () => {
      const { queueId } = await env.submit(
        {
          sender: "s@x.example",
          recipients: [
            { address: "list@v.example", notify: ["SUCCESS", "FAILURE"] },
            { address: "tag@v.example", notify: ["SUCCESS"] },
            { address: "plain@x.example", notify: ["SUCCESS"] },
          ],
        },
        "Subject: t\r\n\r\nbody\r\n",
      );
      assertEquals((await env.read(queueId)).rcpts, [
        "a@r.example FAILURE orcpt=list@v.example",
        "b@r.example FAILURE orcpt=list@v.example",
        "archive@r.example FAILURE orcpt=list@v.example",
        "tagged@r.example NEVER orcpt=tag@v.example",
        "plain@x.example SUCCESS",
      ]);
    });
    await t.step("masquerading: envelope sender and headers, not envelope recipients", async () => {
      const { r, queueId } = await env.submit(
        {
          sender: "x@host.test.example",
          recipients: [{ address: "y@host.test.example" }, { address: "root@h.test.example" }],
        },
        "From: X <x@host.test.example>\r\nCc: root@h.test.example, Admin@h.test.example," +
          " z@h.test.example\r\n\r\nb\r\n",
      );
      assertEquals(r.status, "ok");
      const q = await env.read(queueId);
      assertEquals(q.sender, "x@test.example");
      assertEquals(q.rcpts, ["y@host.test.example", "root@h.test.example"]);
      assertStringIncludes(q.text, "From: X <x@test.example>\r\n");
      assertStringIncludes(
        q.text,
        "Cc: root@h.test.example, Admin@h.test.example, z@test.example\r\n",
      );
    });
    await t.step("a remote SMTP client's headers are left alone", async () => {
      const { r, queueId } = await env.submit(
        { sender: "bob@test.example", recipients: [{ address: "u@r.example" }], attrs: SMTP },
        "From: bob\r\nSender: x@host.test.example\r\n\r\nb\r\n",
      );
      assertEquals(r.status, "ok");
      const q = await env.read(queueId);
      assertEquals(q.sender, "robert@test.example", "envelope rewriting applies to everyone");
      assertStringIncludes(q.text, "From: bob\r\nSender: x@host.test.example\r\n");
    });
  } finally {
    await env.done();
  }
});

Deno.test("cleanup pipeline: table failures and limits refuse the message, queue nothing", async (t) => {
  await t.step(
    "a table that cannot answer: 451 4.3.0, a warning, the connection still usable",
    async () => {
      const env = await setup("virtual_alias_maps = fail:down");
      try {
        const { r, queueId } = await env.submit(
          { sender: "s@x.example", recipients: [{ address: "a@v.example" }] },
          "Subject: x\r\n\r\nb\r\n",
        );
        assertEquals(r, {
          status: "error",
          code: 451,
          dsn: "4.3.0",
          text: "Error: queue file write error",
        });
        assert(
          env.lines.some((l) =>
            l.startsWith(`warning: ${queueId}: virtual_alias_maps: fail:down: lookup of`) &&
            l.endsWith("-- message not accepted, try again later")
          ),
          env.lines.join("\n"),
        );
        assertEquals(env.list("incoming"), []);
        assertEquals(env.notified, []);
      } finally {
        await env.done();
      }
    },
  );
  await t.step("a BCC table or a header check table that cannot answer: 451 4.3.0", async () => {
    for (const cf of ["recipient_bcc_maps = fail:bcc", "header_checks = fail:checks"]) {
      const env = await setup(cf);
      try {
        const { r } = await env.submit(
          { sender: "s@x.example", recipients: [{ address: "a@v.example" }] },
          "Subject: x\r\n\r\nb\r\n",
        );
        assertEquals(r.status === "error" && [r.code, r.dsn], [451, "4.3.0"], cf);
        assertEquals(env.list("incoming"), []);
      } finally {
        await env.done();
      }
    }
  });
  await t.step("expansion limit: 451 4.6.0 Alias expansion error", async () => {
    const env = await setup(
      "virtual_alias_expansion_limit = 2\nvirtual_alias_maps = inline:{ {l@v.example=a@r, b@r, c@r} }",
    );
    try {
      const { r, queueId } = await env.submit(
        { sender: "s@x.example", recipients: [{ address: "l@v.example" }] },
        "Subject: x\r\n\r\nb\r\n",
      );
      assertEquals(r, { status: "error", code: 451, dsn: "4.6.0", text: "Alias expansion error" });
      assert(env.lines.includes(
        `warning: ${queueId}: unreasonable virtual_alias_maps map expansion size for ` +
          "l@v.example -- message not accepted, try again later",
      ));
      assertEquals(env.list("incoming"), []);
    } finally {
      await env.done();
    }
  });
  await t.step("a table type that is not available: 451 and a warning naming it", async () => {
    const env = await setup("header_checks = nosuchtype:/etc/postfix/header_checks");
    try {
      const { r } = await env.submit(
        { sender: "s@x.example", recipients: [{ address: "a@x.example" }] },
        "Subject: x\r\n\r\nb\r\n",
      );
      assertEquals(r.status, "error");
      if (r.status === "error") assertEquals([r.code, r.dsn], [451, "4.3.0"]);
      assert(env.lines.some((l) => l.includes('lookup table type "nosuchtype" is not supported')));
    } finally {
      await env.done();
    }
  });
});

Deno.test("cleanup pipeline: header and body checks", async (t) => {
  const env = await setup([
    "header_checks = regexp:{ {/^Subject: buy now$$/ REJECT no spam here}, {/^Subject: hold me$$/ HOLD}, {/^Subject: drop me$$/ DISCARD}, {/^Subject: redirect me$$/ REDIRECT quarantine@q.example}, {/^Subject: copy me$$/ BCC audit@q.example}, {/^X-Mailer: spammer$$/ IGNORE}, {/^X-Tag: old$$/ REPLACE X-Tag: new}, {/^X-Pre: 1$$/ PREPEND X-Added: yes}, {/^Subject: filter me$$/ FILTER smtp:[127.0.0.1]:10025} }",
    "mime_header_checks = regexp:{ {/^Content-Type: application\\/x-msdownload$$/ REJECT 5.7.0 no executables} }",
    "nested_header_checks = regexp:{ {/^Subject: nested evil$$/ REJECT nested} }",
    "body_checks = regexp:{ {/^buy pills$$/ REJECT}, {/^old line$$/ REPLACE new line}, {/^sig$$/ PREPEND -- signature} }",
    "sender_bcc_maps = inline:{ s@x.example=sbcc@q.example }",
    'always_bcc = "all bcc"@q.example',
  ].join("\n"));
  const rcpt = [{ address: "a@x.example" }];
  try {
    await t.step("REJECT: smtpd gets 550 with the text, the log has Postfix's line", async () => {
      const { r, queueId } = await env.submit(
        { sender: "s@x.example", recipients: rcpt, attrs: SMTP },
        "Subject: buy now\r\n\r\nb\r\n",
      );
      assertEquals(r, { status: "error", code: 550, dsn: "5.7.1", text: "no spam here" });
      assert(
        env.lines.includes(
          `${queueId}: reject: header Subject: buy now from client.example[192.0.2.7]; ` +
            "from=<s@x.example> to=<a@x.example> proto=ESMTP helo=<client.example>: " +
            "5.7.1 no spam here",
        ),
        env.lines.join("\n"),
      );
      assertEquals(env.list("incoming").includes(queueId), false);
    });
    await t.step("DISCARD: success for the client, nothing queued, logged", async () => {
      const before = env.notified.length;
      const { r, queueId } = await env.submit(
        { sender: "s@x.example", recipients: rcpt, attrs: { origin: "pickup", protocol: "local" } },
        "Subject: drop me\r\n\r\nb\r\n",
      );
      assertEquals(r, { status: "ok", queueId });
      assertEquals(env.list("incoming").includes(queueId), false);
      assertEquals(env.notified.length, before);
      assert(
        env.lines.some((l) =>
          l.startsWith(`${queueId}: discard: header Subject: drop me from local;`)
        ),
      );
    });
    await t.step("HOLD: the file goes to hold/, qmgr is not woken", async () => {
      const { r, queueId } = await env.submit(
        { sender: "s@x.example", recipients: rcpt },
        "Subject: hold me\r\n\r\nb\r\n",
      );
      assertEquals(r.status, "ok");
      assertEquals(env.list("hold"), [queueId]);
      assertEquals(env.notified.includes(queueId), false);
      assertEquals((await env.read(queueId, "hold")).rcpts[0], "a@x.example");
    });
    await t.step("REDIRECT replaces every recipient; BCCs are NOTIFY=NEVER", async () => {
      const { queueId } = await env.submit(
        {
          sender: "s@x.example",
          recipients: [{ address: "a@x.example" }, { address: "b@x.example" }],
        },
        "Subject: redirect me\r\n\r\nb\r\n",
      );
      assertEquals((await env.read(queueId)).rcpts, [
        "quarantine@q.example",
        "sbcc@q.example NEVER",
        "all bcc@q.example NEVER",
      ]);
    });
    await t.step("BCC action, sender_bcc_maps and always_bcc add recipients", async () => {
      const { queueId } = await env.submit(
        { sender: "s@x.example", recipients: rcpt },
        "Subject: copy me\r\n\r\nb\r\n",
      );
      assertEquals((await env.read(queueId)).rcpts, [
        "a@x.example",
        "sbcc@q.example NEVER",
        "all bcc@q.example NEVER",
        "audit@q.example NEVER",
      ]);
    });
    await t.step(
      "IGNORE, REPLACE and PREPEND edit headers; body REPLACE/PREPEND edit lines",
      async () => {
        const { r, queueId } = await env.submit(
          { sender: "s@x.example", recipients: rcpt },
          "X-Mailer: spammer\r\nX-Tag: old\r\nX-Pre: 1\r\nSubject: ok\r\n\r\nold line\r\nsig\r\nend\r\n",
        );
        assertEquals(r.status, "ok");
        const { text } = await env.read(queueId);
        assertMatch(
          text,
          /^X-Tag: new\r\nX-Added: yes\r\nX-Pre: 1\r\nSubject: ok\r\nMessage-Id: .*\r\nDate: .*\r\nFrom: s@x\.example\r\n\r\nnew line\r\n-- signature\r\nsig\r\nend\r\n$/,
        );
      },
    );
    await t.step("body_checks REJECT", async () => {
      const { r } = await env.submit(
        { sender: "s@x.example", recipients: rcpt },
        "Subject: ok\r\n\r\nhello\r\nbuy pills\r\nmore\r\n",
      );
      assertEquals(r, {
        status: "error",
        code: 550,
        dsn: "5.7.1",
        text: "message content rejected",
      });
    });
    await t.step(
      "mime_header_checks on a part header; nested_header_checks on an attached message",
      async () => {
        const mime = (part: string) =>
          'Subject: ok\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n' + part +
          "\r\n--b--\r\n";
        let { r } = await env.submit(
          { sender: "s@x.example", recipients: rcpt },
          mime("Content-Type: application/x-msdownload\r\n\r\nMZ"),
        );
        assertEquals(r, { status: "error", code: 550, dsn: "5.7.0", text: "no executables" });
        ({ r } = await env.submit(
          { sender: "s@x.example", recipients: rcpt },
          mime("Content-Type: message/rfc822\r\n\r\nSubject: nested evil\r\n\r\nhi"),
        ));
        assertEquals(r, { status: "error", code: 550, dsn: "5.7.1", text: "nested" });
        // The same header in the body text of a part is not a header.
        ({ r } = await env.submit(
          { sender: "s@x.example", recipients: rcpt },
          mime("Content-Type: text/plain\r\n\r\nSubject: nested evil"),
        ));
        assertEquals(r.status, "ok");
      },
    );
    await t.step("FILTER: recorded in the queue file for qmgr", async () => {
      const { r, queueId } = await env.submit(
        { sender: "s@x.example", recipients: rcpt },
        "Subject: filter me\r\n\r\nb\r\n",
      );
      assertEquals(r.status, "ok");
      assertEquals(await env.filterOf(queueId), "smtp:[127.0.0.1]:10025");
    });
    await t.step("content checks do not apply to bounces, nor automatic BCC", async () => {
      const { r, queueId } = await env.submit(
        {
          sender: "",
          recipients: rcpt,
          attrs: { origin: "bounce", dsnKind: "bounce" },
        },
        "Subject: buy now\r\n\r\nbuy pills\r\n",
      );
      assertEquals(r.status, "ok");
      assertEquals((await env.read(queueId)).rcpts, ["a@x.example"]);
    });
  } finally {
    await env.done();
  }
});

Deno.test("cleanup pipeline: body_checks_size_limit per part, long lines in pieces", async (t) => {
  const env = await setup(
    "body_checks = regexp:{ {/^bad$$/ REJECT} }\nbody_checks_size_limit = 20\nline_length_limit = 512",
  );
  const rcpt = [{ address: "a@x.example" }];
  try {
    await t.step("a line past the limit of its part is not checked", async () => {
      const { r } = await env.submit(
        { sender: "s@x.example", recipients: rcpt },
        "Subject: x\r\n\r\n" + "0123456789\r\n".repeat(3) + "bad\r\n",
      );
      assertEquals(r.status, "ok");
    });
    await t.step("the count starts again in each MIME part", async () => {
      const { r } = await env.submit(
        { sender: "s@x.example", recipients: rcpt },
        "Subject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n" +
          "0123456789\r\n".repeat(3) + "--b\r\n\r\nbad\r\n--b--\r\n",
      );
      assertEquals(r.status, "error");
    });
    await t.step("a line over line_length_limit is checked in pieces", async () => {
      const { r } = await env.submit(
        { sender: "s@x.example", recipients: rcpt },
        "Subject: x\r\n\r\n" + "a".repeat(512) + "bad\r\n",
      );
      assertEquals(r.status, "error");
    });
  } finally {
    await env.done();
  }
});

Deno.test("cleanup pipeline: an empty configuration opens no table", async () => {
  const env = await setup("");
  try {
    const t = await env.svc.tables();
    assertEquals(t.idle, true);
    for (
      const m of [t.canonical, t.senderCanonical, t.recipientCanonical, t.virtual, t.senderBcc]
    ) {
      assertEquals(m.dicts.length, 0, m.title);
    }
    const c = t.checks;
    assertEquals([c.header, c.mime, c.nested, c.body].map((m) => m.dicts.length), [0, 0, 0, 0]);
  } finally {
    await env.done();
  }
});

Deno.test("cleanup pipeline: the text header checks see", () => {
  assertEquals(logicalHeader(enc.encode("Subject: a\r\n\tb\r\n")), "Subject: a\n\tb");
  assertEquals(logicalHeader(enc.encode("Subject  : a\r\n")), "Subject: a");
  assertEquals(logicalHeader(enc.encode("X:  a:b\r\n")), "X:  a:b");
});

Deno.test("cleanup pipeline: which clients get their headers rewritten", () => {
  assertEquals(localHeaderContext(undefined, []), true);
  assertEquals(localHeaderContext({ origin: "pickup" }, []), true);
  assertEquals(localHeaderContext({ ...SMTP, clientAddr: "127.0.0.1" }, []), true);
  assertEquals(localHeaderContext({ ...SMTP, clientAddr: "::1" }, []), true);
  assertEquals(localHeaderContext(SMTP, []), false);
  assertEquals(localHeaderContext(SMTP, ["192.0.2.7"]), true);
});
