/**
 * bounce daemon tests: the notice logic against real queue files with a
 * capturing submit function, and the whole service over IPC with a fake
 * cleanup server.
 */
import { concat } from "../../lib/bytes/mod.ts";
import type { BounceRecipient, BounceRequest } from "../../lib/bounce/client.ts";
import { requestBounce } from "../../lib/bounce/client.ts";
import type { CleanupEnvelope } from "../../lib/cleanup/client.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { type IpcConn, ipcListen } from "../../lib/ipc/mod.ts";
import { Logger } from "../../lib/log/mod.ts";
import { DirSyncer, QueueDir, QueueWriter, type Recipient } from "../../lib/queue/mod.ts";
import { mapsOpener, type ServiceContext } from "../../lib/service/mod.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "../../tests/helpers/assert.ts";
import { handleBounce, serveBounce, type Submit } from "./bounce.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const ORIGINAL_ID = "0006123456789AB00";
const HEADERS = "From: Alice <alice@example.org>\r\n" +
  "To: bob@example.net\r\n" +
  "Subject: lunch\r\n" +
  "Message-Id: <m1@example.org>\r\n";
const BODY = "Shall we meet at noon?\r\n-- \r\nAlice\r\n";

const FAILED: BounceRecipient = {
  address: "bob@example.net",
  action: "failed",
  status: "5.1.1",
  reason: "host mx.example.net[192.0.2.25] said: 550 5.1.1 no such user",
  diagnostic: "smtp; 550 5.1.1 no such user",
  remoteMta: "mx.example.net",
};

interface Fixture {
  dir: string;
  queue: QueueDir;
  ctx: ServiceContext;
  lines: string[];
  path: string;
}

/** A queue directory with one original message in active/, a config and a captured log. */
async function fixture(
  opts: {
    mainCf?: string;
    sender?: string;
    body?: string;
    rcpts?: Recipient[];
    files?: Record<string, string>;
  } = {},
): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "bounce_test" });
  made.push(dir);
  const queue = new QueueDir(dir);
  await queue.create();
  const config = makeConfig(
    dir,
    `queue_directory = ${dir}\nmyhostname = mx.example.com\nmyorigin = example.com\n` +
      "mail_name = Postfix\n" +
      (opts.mainCf ?? ""),
    { hostname: "mx", files: opts.files },
  );
  const lines: string[] = [];
  const log = new Logger({
    program: "postwarden/bounce",
    hostname: "mx",
    sinks: [(l) => lines.push(l)],
  });
  const w = new QueueWriter(queue.dir("active"), ORIGINAL_ID, new DirSyncer(queue.dir("active")));
  await w.begin(
    {
      queueId: ORIGINAL_ID,
      arrival: Date.UTC(2026, 10, 30, 16, 0, 0),
      sender: opts.sender ?? "alice@example.org",
    },
    opts.rcpts ?? [{ address: "bob@example.net" }],
  );
  await w.write(enc.encode(HEADERS + "\r\n" + (opts.body ?? BODY)));
  await w.commit();
  const ctx: ServiceContext = {
    config,
    log,
    queue,
    args: {
      configDir: dir,
      service: "bounce",
      type: "unix",
      overrides: {},
      publicService: false,
    },
    services: [],
    peer: (name: string) => queue.privateSocket(name),
    signal: new AbortController().signal,
    maps: mapsOpener((m) => log.warn(m)),
  };
  return { dir, queue, ctx, lines, path: queue.path("active", ORIGINAL_ID) };
}

function request(f: Fixture, over: Partial<BounceRequest> = {}): BounceRequest {
  return {
    op: "bounce",
    queueId: ORIGINAL_ID,
    path: f.path,
    sender: "alice@example.org",
    arrival: Date.UTC(2026, 10, 30, 16, 0, 0),
    recipients: [FAILED],
    ...over,
  };
}

interface Captured {
  envelope: CleanupEnvelope;
  queueId: string;
  text: string;
}

/** A submit function that records each notice under queue ids NEW1, NEW2, ... */
function capture(fail: (n: number) => boolean = () => false): { submit: Submit; sent: Captured[] } {
  const sent: Captured[] = [];
  let n = 0;
  const submit: Submit = (envelope, content) => {
    n++;
    if (fail(n)) {
      return Promise.reject(new Error("cleanup: 451 4.3.0 Error: queue file write error"));
    }
    const queueId = `NEW${n}`;
    sent.push({ envelope, queueId, text: dec.decode(content(queueId)) });
    return Promise.resolve(queueId);
  };
  return { submit, sent };
}

/** Temporary queue directories, removed when the test module unloads. */
const made: string[] = [];
globalThis.addEventListener("unload", () => {
  for (const dir of made) Deno.removeSync(dir, { recursive: true });
});

const NOW = () => new Date(Date.UTC(2026, 10, 30, 16, 28, 42));

Deno.test("bounce notices", async (t) => {
  await t.step("failure notice to the sender returns the whole message by default", async () => {
    const f = await fixture();
    const { submit, sent } = capture();
    const reply = await handleBounce(request(f), f.ctx, { submit, now: NOW, tzOffsetMinutes: 0 });
    assertEquals(reply, { status: "ok", queueId: "NEW1" });
    assertEquals(sent.length, 1);
    assertEquals(sent[0].envelope, {
      sender: "",
      recipients: [{ address: "alice@example.org" }],
      attrs: { origin: "bounce", dsnKind: "bounce" },
      arrival: NOW().getTime(),
    });
    const text = sent[0].text;
    assertStringIncludes(text, "Received: by mx.example.com (Postfix)\r\n\tid NEW1; ");
    assertStringIncludes(text, "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n");
    assertStringIncludes(text, "Subject: Undelivered Mail Returned to Sender\r\n");
    assertStringIncludes(text, "To: alice@example.org\r\n");
    assertStringIncludes(text, "Message-Id: <20261130162842.NEW1@mx.example.com>\r\n");
    assertStringIncludes(text, `X-Postfix-Queue-ID: ${ORIGINAL_ID}\r\n`);
    assertStringIncludes(text, "Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\n");
    assertStringIncludes(text, "Remote-MTA: dns; mx.example.net\r\n");
    assertStringIncludes(text, "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n");
    assertStringIncludes(text, "Content-Description: Undelivered Message\r\n");
    assertStringIncludes(text, "Content-Type: message/rfc822\r\n");
    assertStringIncludes(
      text,
      "\r\nReturn-Path: <alice@example.org>\r\n" + HEADERS + "\r\n" + BODY + "\r\n--",
    );
    assertEquals(f.lines, []);
  });

  await t.step("RET=HDRS returns headers only", async () => {
    const f = await fixture();
    const { submit, sent } = capture();
    await handleBounce(request(f, { ret: "HDRS" }), f.ctx, { submit, now: NOW });
    const text = sent[0].text;
    assertStringIncludes(text, "Content-Description: Undelivered Message Headers\r\n");
    assertStringIncludes(text, "Content-Type: text/rfc822-headers\r\n");
    assertStringIncludes(text, "Return-Path: <alice@example.org>\r\n" + HEADERS + "\r\n--");
    assert(!text.includes("Shall we meet"));
  });

  await t.step("REQUIRETLS: headers only, and the notice is sent with REQUIRETLS", async () => {
    const f = await fixture();
    const { submit, sent } = capture();
    await handleBounce(request(f, { requiretls: true }), f.ctx, { submit, now: NOW });
    assertStringIncludes(sent[0].text, "Content-Type: text/rfc822-headers\r\n");
    assert(!sent[0].text.includes("Shall we meet"));
    assertEquals(sent[0].envelope.attrs?.requiretls, true);
    const plain = capture();
    await handleBounce(request(f), f.ctx, { submit: plain.submit, now: NOW });
    assertEquals(plain.sent[0].envelope.attrs?.requiretls, undefined);
  });

  await t.step("a message over bounce_size_limit is returned as headers only", async () => {
    const big = "x".repeat(70) + "\r\n";
    const f = await fixture({ body: big.repeat(800) }); // 57600 bytes > 50000
    const { submit, sent } = capture();
    await handleBounce(request(f), f.ctx, { submit, now: NOW });
    assertStringIncludes(sent[0].text, "Content-Type: text/rfc822-headers\r\n");
    assert(!sent[0].text.includes("xxxx"));

    const small = await fixture({ mainCf: "bounce_size_limit = 100\n" });
    const s2 = capture();
    await handleBounce(request(small), small.ctx, { submit: s2.submit, now: NOW });
    assertStringIncludes(s2.sent[0].text, "Content-Type: text/rfc822-headers\r\n");

    const unlimited = await fixture({ mainCf: "bounce_size_limit = 0\n", body: big.repeat(800) });
    const s3 = capture();
    await handleBounce(request(unlimited), unlimited.ctx, { submit: s3.submit, now: NOW });
    assertStringIncludes(s3.sent[0].text, "Content-Type: message/rfc822\r\n");
    assertStringIncludes(s3.sent[0].text, big.repeat(800) + "\r\n--");
  });

  await t.step("success and delay notices carry headers only", async () => {
    const f = await fixture({
      rcpts: [{ address: "bob@example.net", notify: ["SUCCESS", "DELAY"] }],
    });
    const { submit, sent } = capture();
    const delivered: BounceRecipient = {
      address: "bob@example.net",
      action: "relayed",
      status: "2.0.0",
      reason: "host mx.example.net[192.0.2.25] said: 250 2.0.0 Ok",
      remoteMta: "mx.example.net",
    };
    assertEquals(
      await handleBounce(request(f, { op: "success", recipients: [delivered] }), f.ctx, {
        submit,
        now: NOW,
      }),
      { status: "ok", queueId: "NEW1" },
    );
    const delayed: BounceRecipient = {
      ...FAILED,
      action: "delayed",
      status: "4.4.1",
      diagnostic: undefined,
      reason: "connect to mx.example.net[192.0.2.25]:25: Connection timed out",
    };
    await handleBounce(request(f, { op: "delay", recipients: [delayed] }), f.ctx, {
      submit,
      now: NOW,
    });
    const [success, delay] = sent;
    assertEquals(success.envelope.sender, "");
    assertEquals(success.envelope.attrs, { origin: "bounce", dsnKind: "success" });
    assertStringIncludes(success.text, "Subject: Successful Mail Delivery Report\r\n");
    assertStringIncludes(success.text, "Action: relayed\r\n");
    assertStringIncludes(success.text, "Content-Description: Message Headers\r\n");
    assert(!success.text.includes("Shall we meet"));
    assertEquals(delay.envelope.attrs, { origin: "bounce", dsnKind: "delay" });
    assertStringIncludes(delay.text, "Subject: Delayed Mail (still being retried)\r\n");
    assertStringIncludes(delay.text, "Action: delayed\r\n");
    assertStringIncludes(delay.text, "Will-Retry-Until: ");
    assertStringIncludes(delay.text, "Content-Type: text/rfc822-headers\r\n");
    assert(!delay.text.includes("Shall we meet"));
  });

  await t.step("a verification report (sendmail -bv): to the sender, whatever NOTIFY", async () => {
    const f = await fixture({
      rcpts: [{ address: "bob@example.net", notify: ["NEVER"] }, { address: "list@example.com" }],
    });
    const { submit, sent } = capture();
    const report: BounceRecipient[] = [
      {
        address: "bob@example.net",
        action: "deliverable",
        status: "2.1.5",
        reason: "delivery via mx.example.net[192.0.2.25]:25: 250 2.1.5 Ok",
        diagnostic: "smtp; 250 2.1.5 Ok",
        remoteMta: "mx.example.net",
      },
      {
        address: "carol@example.com",
        orcpt: "list@example.com",
        action: "undeliverable",
        status: "5.1.1",
        reason: 'delivery via local: unknown user: "carol"',
      },
    ];
    assertEquals(
      await handleBounce(request(f, { op: "verify", recipients: report }), f.ctx, {
        submit,
        now: NOW,
      }),
      { status: "ok", queueId: "NEW1" },
    );
    const [r] = sent;
    assertEquals(r.envelope.sender, "");
    assertEquals(r.envelope.recipients, [{ address: "alice@example.org" }]);
    assertStringIncludes(r.text, "Subject: Mail Delivery Status Report\r\n");
    assertStringIncludes(r.text, "Enclosed is the mail delivery report that you requested.");
    assertStringIncludes(
      r.text,
      "<bob@example.net>: delivery via mx.example.net[192.0.2.25]:25: 250 2.1.5 Ok\r\n",
    );
    assertStringIncludes(
      r.text,
      "<carol@example.com> (expanded from <list@example.com>): delivery via local:\r\n" +
        '    unknown user: "carol"\r\n',
    );
    assertStringIncludes(r.text, "Action: deliverable\r\nStatus: 2.1.5\r\n");
    assertStringIncludes(r.text, "Diagnostic-Code: smtp; 250 2.1.5 Ok\r\n");
    assertStringIncludes(r.text, "Action: undeliverable\r\nStatus: 5.1.1\r\n");
    assertStringIncludes(
      r.text,
      'Diagnostic-Code: X-Postfix; delivery via local: unknown user: "carol"\r\n',
    );
    assertStringIncludes(r.text, "Content-Description: Message Headers\r\n");
    assert(!r.text.includes("Shall we meet"));
    // The null sender gets none.
    assertEquals(
      await handleBounce(request(f, { op: "verify", sender: "", recipients: report }), f.ctx, {
        submit,
        now: NOW,
      }),
      { status: "ok", queueId: "" },
    );
  });

  await t.step("RET=FULL still gives headers only in delay notices", async () => {
    const f = await fixture();
    const { submit, sent } = capture();
    const delayed: BounceRecipient = { ...FAILED, action: "delayed", status: "4.4.1" };
    await handleBounce(request(f, { op: "delay", ret: "FULL", recipients: [delayed] }), f.ctx, {
      submit,
      now: NOW,
    });
    assertStringIncludes(sent[0].text, "Content-Type: text/rfc822-headers\r\n");
  });

  await t.step(
    "NOTIFY without FAILURE leaves the recipient out of the sender's notice",
    async () => {
      const f = await fixture({
        rcpts: [
          { address: "bob@example.net", notify: ["NEVER"] },
          { address: "carol@example.net", notify: ["SUCCESS", "FAILURE"] },
        ],
      });
      const { submit, sent } = capture();
      const carol = { ...FAILED, address: "carol@example.net" };
      const reply = await handleBounce(request(f, { recipients: [FAILED, carol] }), f.ctx, {
        submit,
        now: NOW,
      });
      assertEquals(reply, { status: "ok", queueId: "NEW1" });
      assert(!sent[0].text.includes("Final-Recipient: rfc822; bob@example.net"));
      assertStringIncludes(sent[0].text, "Final-Recipient: rfc822; carol@example.net\r\n");

      const never = capture();
      const none = await handleBounce(request(f), f.ctx, { submit: never.submit, now: NOW });
      assertEquals(none, { status: "ok", queueId: "" });
      assertEquals(never.sent, []);
    },
  );

  await t.step("an empty recipient list needs no notice", async () => {
    const f = await fixture();
    const { submit, sent } = capture();
    assertEquals(await handleBounce(request(f, { recipients: [] }), f.ctx, { submit }), {
      status: "ok",
      queueId: "",
    });
    assertEquals(sent, []);
  });
});

Deno.test("bounce_template_file", async (t) => {
  const file = [
    "failure_template = <<EOF",
    "From: Postmaster of $myhostname <postmaster>",
    "Subject: Returned mail",
    "Postmaster-Subject: Copy of returned mail",
    "Charset: utf-8",
    "",
    "Grüße from $myhostname: we kept it $maximal_queue_lifetime_days days, $$5.",
    "EOF",
  ].join("\n");
  await t.step("header values and expanded text replace the built-in ones", async () => {
    const f = await fixture({
      mainCf: "bounce_template_file = /etc/bounce.cf\nmaximal_queue_lifetime = 3d\n" +
        "notify_classes = bounce\n",
      files: { "/etc/bounce.cf": file },
    });
    const { submit, sent } = capture();
    await handleBounce(request(f), f.ctx, { submit, now: NOW });
    const [sender, postmaster] = sent;
    // Header values are not expanded; an address without a domain is qualified.
    assertStringIncludes(
      sender.text,
      "From: Postmaster of $myhostname <postmaster@mx.example.com>\r\n",
    );
    assertStringIncludes(sender.text, "Subject: Returned mail\r\n");
    assertStringIncludes(
      sender.text,
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
        "Grüße from mx.example.com: we kept it 3 days, $5.\r\n",
    );
    assert(!sender.text.includes("I'm sorry to have to inform you"));
    assertStringIncludes(postmaster.text, "Subject: Copy of returned mail\r\n");
    assert(!postmaster.text.includes("Grüße"), "postmaster copies carry no template text");
  });
  await t.step("kinds the file does not define keep the built-in template", async () => {
    const f = await fixture({
      mainCf: "bounce_template_file = /etc/bounce.cf\n",
      files: { "/etc/bounce.cf": file },
      rcpts: [{ address: "bob@example.net", notify: ["DELAY"] }],
    });
    const { submit, sent } = capture();
    await handleBounce(
      request(f, { op: "delay", recipients: [{ ...FAILED, action: "delayed", status: "4.4.1" }] }),
      f.ctx,
      { submit, now: NOW },
    );
    assertStringIncludes(sent[0].text, "Subject: Delayed Mail (still being retried)\r\n");
    assertStringIncludes(sent[0].text, "# THIS IS A WARNING ONLY.");
  });
});

Deno.test("double bounces", async (t) => {
  await t.step("a failed notice is discarded under the default notify_classes", async () => {
    const f = await fixture({ sender: "" });
    const { submit, sent } = capture();
    const reply = await handleBounce(request(f, { sender: "" }), f.ctx, { submit, now: NOW });
    assertEquals(reply, { status: "ok", queueId: "" });
    assertEquals(sent, []);
  });

  for (const classes of ["bounce", "2bounce"]) {
    await t.step(`notify_classes = ${classes}: postmaster gets the double bounce`, async () => {
      const f = await fixture({ sender: "", mainCf: `notify_classes = ${classes}\n` });
      const { submit, sent } = capture();
      const reply = await handleBounce(request(f, { sender: "" }), f.ctx, { submit, now: NOW });
      assertEquals(reply, { status: "ok", queueId: "NEW1" });
      assertEquals(sent.length, 1);
      assertEquals(sent[0].envelope.sender, "double-bounce@mx.example.com");
      assertEquals(sent[0].envelope.recipients, [{ address: "postmaster@example.com" }]);
      assertStringIncludes(sent[0].text, "Subject: Postmaster Copy: Undelivered Mail\r\n");
      assertStringIncludes(sent[0].text, "Auto-Submitted: auto-generated\r\n");
      assertStringIncludes(sent[0].text, "X-Postfix-Sender: rfc822; MAILER-DAEMON\r\n");
      assertStringIncludes(sent[0].text, "Return-Path: <>\r\n");
      assertEquals(f.lines.length, 1);
      assertMatch(f.lines[0], /: 0006123456789AB00: postmaster non-delivery notification: NEW1\n$/);
    });
  }

  await t.step("2bounce_notice_recipient is honoured and qualified", async () => {
    const f = await fixture({
      sender: "",
      mainCf: "notify_classes = 2bounce\n2bounce_notice_recipient = hostmaster\n",
    });
    const { submit, sent } = capture();
    await handleBounce(request(f, { sender: "" }), f.ctx, { submit, now: NOW });
    assertEquals(sent[0].envelope.recipients, [{ address: "hostmaster@example.com" }]);
    assertStringIncludes(sent[0].text, "To: hostmaster@example.com\r\n");
  });

  await t.step("a failed double bounce is never bounced again", async () => {
    for (
      const sender of ["double-bounce@mx.example.com", "Double-Bounce@example.com", "double-bounce"]
    ) {
      const f = await fixture({ sender, mainCf: "notify_classes = bounce, 2bounce, delay\n" });
      const { submit, sent } = capture();
      const reply = await handleBounce(request(f, { sender }), f.ctx, { submit, now: NOW });
      assertEquals(reply, { status: "ok", queueId: "" });
      assertEquals(sent, []);
      assertEquals(f.lines.length, 1);
      assertMatch(
        f.lines[0],
        /warning: 0006123456789AB00: undeliverable postmaster notification discarded\n$/,
      );
    }
  });

  await t.step("notify_classes = bounce also copies postmaster on single bounces", async () => {
    const f = await fixture({ mainCf: "notify_classes = bounce\n" });
    const { submit, sent } = capture();
    const reply = await handleBounce(request(f), f.ctx, { submit, now: NOW });
    assertEquals(reply, { status: "ok", queueId: "NEW1" });
    assertEquals(sent.map((s) => [s.envelope.sender, s.envelope.recipients[0].address]), [
      ["", "alice@example.org"],
      ["double-bounce@mx.example.com", "postmaster@example.com"],
    ]);
    assertStringIncludes(sent[0].text, "Content-Type: message/rfc822\r\n");
    assertStringIncludes(sent[1].text, "Content-Type: text/rfc822-headers\r\n");
    assertMatch(f.lines[0], /: 0006123456789AB00: postmaster non-delivery notification: NEW2\n$/);
  });

  await t.step("a failed postmaster copy is logged, not retried", async () => {
    const f = await fixture({ mainCf: "notify_classes = bounce\n" });
    const { submit, sent } = capture((n) => n === 2);
    const reply = await handleBounce(request(f), f.ctx, { submit, now: NOW });
    assertEquals(reply, { status: "ok", queueId: "NEW1" });
    assertEquals(sent.length, 1);
    assertMatch(
      f.lines[0],
      /warning: 0006123456789AB00: postmaster notice failed while bouncing to alice@example.org: /,
    );
  });
});

Deno.test("bounce failures", async (t) => {
  await t.step("a notice cleanup does not queue is an error for qmgr to retry", async () => {
    const f = await fixture();
    const { submit } = capture(() => true);
    const reply = await handleBounce(request(f), f.ctx, { submit, now: NOW });
    assertEquals(reply, {
      status: "error",
      text: "cleanup: 451 4.3.0 Error: queue file write error",
    });
    assertMatch(f.lines[0], /warning: 0006123456789AB00: cannot send bounce notification: /);
  });

  await t.step("an unreadable original still gets a notice, without the message", async () => {
    const f = await fixture();
    await Deno.remove(f.path);
    const { submit, sent } = capture();
    const reply = await handleBounce(request(f), f.ctx, { submit, now: NOW });
    assertEquals(reply, { status: "ok", queueId: "NEW1" });
    assertStringIncludes(sent[0].text, "Final-Recipient: rfc822; bob@example.net\r\n");
    assert(!sent[0].text.includes("Subject: lunch"));
    assertMatch(f.lines[0], /warning: 0006123456789AB00: cannot read original message /);
  });

  await t.step("a malformed request is refused", async () => {
    const f = await fixture();
    const { submit, sent } = capture();
    for (const bad of [null, { op: "trace" }, { ...request(f), recipients: [{ address: 1 }] }]) {
      const reply = await handleBounce(bad, f.ctx, { submit });
      assertEquals(reply.status, "error");
    }
    assertEquals(sent, []);
  });

  await t.step("a malformed status is replaced, not retried forever", async () => {
    const f = await fixture();
    const { submit, sent } = capture();
    const reply = await handleBounce(
      request(f, { recipients: [{ ...FAILED, status: "550" }] }),
      f.ctx,
      {
        submit,
        now: NOW,
      },
    );
    assertEquals(reply.status, "ok");
    assertStringIncludes(sent[0].text, "Status: 5.0.0\r\n");
  });
});

/** A fake cleanup: records the exchange, answers with a fixed queue id or an error. */
function fakeCleanup(path: string, verdict: "ok" | "error") {
  const seen: { frames: string[]; envelope?: Record<string, unknown>; content: Uint8Array[] } = {
    frames: [],
    content: [],
  };
  const server = ipcListen(path, async (conn: IpcConn) => {
    const open = await conn.recvMsg();
    seen.frames.push(`msg:${open.op}`);
    await conn.send({ queueId: "CLEANUP1" });
    const envelope = await conn.recvMsg();
    seen.envelope = envelope;
    seen.frames.push(`msg:${envelope.op}`);
    for (;;) {
      const f = await conn.recv();
      if (f === null) throw new Error("closed early");
      seen.frames.push(f.kind);
      if (f.kind === "end") break;
      if (f.kind === "data") seen.content.push(f.data);
    }
    await conn.send(
      verdict === "ok"
        ? { status: "ok", queueId: "CLEANUP1" }
        : { status: "error", code: 452, dsn: "4.3.1", text: "Insufficient system storage" },
    );
  });
  return { server, seen };
}

Deno.test("bounce service over IPC", async (t) => {
  for (const verdict of ["ok", "error"] as const) {
    await t.step(`cleanup says ${verdict}`, async () => {
      const f = await fixture();
      const cleanup = fakeCleanup(f.queue.privateSocket("cleanup"), verdict);
      const bounce = ipcListen(f.queue.privateSocket("bounce"), (conn) => serveBounce(conn, f.ctx));
      try {
        const reply = await requestBounce(f.queue.privateSocket("bounce"), request(f));
        if (verdict === "ok") {
          assertEquals(reply, { status: "ok", queueId: "CLEANUP1" });
        } else {
          assertEquals(reply, {
            status: "error",
            text: "cleanup: 452 4.3.1 Insufficient system storage",
          });
        }
        const { frames, envelope, content } = cleanup.seen;
        assertEquals(frames[0], "msg:open");
        assertEquals(frames[1], "msg:envelope");
        assertEquals(frames[frames.length - 1], "end");
        assert(frames.slice(2, -1).every((k) => k === "data") && frames.length > 3);
        assertEquals(envelope?.sender, "");
        assertEquals(envelope?.recipients, [{ address: "alice@example.org" }]);
        assertEquals(envelope?.attrs, { origin: "bounce", dsnKind: "bounce" });
        const text = dec.decode(concat(content));
        assertStringIncludes(text, "\tid CLEANUP1; ");
        assertMatch(text, /Message-Id: <\d{14}\.CLEANUP1@mx\.example\.com>\r\n/);
        assertStringIncludes(text, "Content-Type: message/rfc822\r\n");
      } finally {
        bounce.close();
        cleanup.server.close();
        await Promise.all([bounce.done, cleanup.server.done]);
      }
    });
  }

  await t.step("cleanup unreachable: error reply", async () => {
    const f = await fixture();
    const bounce = ipcListen(f.queue.privateSocket("bounce"), (conn) => serveBounce(conn, f.ctx));
    try {
      const reply = await requestBounce(f.queue.privateSocket("bounce"), request(f));
      assertEquals(reply.status, "error");
      assert(reply.status === "error" && reply.text.includes("private/cleanup"));
    } finally {
      bounce.close();
      await bounce.done;
    }
  });
});
