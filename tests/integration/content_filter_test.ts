/**
 * An after-queue content filter loop, as every amavis/Postfix guide sets
 * it up: Postwarden with content_filter = smtp:[127.0.0.1]:PORT1 and
 * smtp_send_xforward_command = yes; a tiny filter (an SMTP server in this
 * test) that adds a header and re-sends the message, with the XFORWARD
 * attributes it was given, to Postwarden's second smtpd on PORT2 (`-o
 * content_filter=` so it is not filtered again, `-o
 * smtpd_authorized_xforward_hosts=127.0.0.0/8`). The message reaches the
 * final sink once, with the filter's header, and the re-injection logs the
 * original client. Also: a FILTER access action sends only the matching
 * message through the filter, and a message whose filter transport is not
 * in master.cf is deferred (never delivered unfiltered, never lost).
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import { freePort, smtpReplies, startInstance, waitUntil } from "../helpers/instance.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/**
 * The test filter: a sink that offers XFORWARD, adds "X-Filtered: yes" to
 * each message and re-sends it to `reinject` (with the XFORWARD commands it
 * was given) before it answers the end of data with the re-injection's
 * reply. `seen`: the messages as the filter received them.
 */
function startFilter(port: number, reinject: () => number) {
  const sink = new TestSink(port, {
    ehlo: ["XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT"],
    onMessage: async (m) => {
      const body = `X-Filtered: yes\r\n${m.data}`.replace(/^\./gm, "..");
      const replies = await smtpReplies(reinject(), [
        "EHLO filter.test",
        ...m.extra.filter((c) => /^XFORWARD /i.test(c)),
        `MAIL FROM:<${m.from}>`,
        ...m.to.map((t) => `RCPT TO:<${t}>`),
        "DATA",
        body.replace(/\r\n$/, "") + "\r\n.",
        "QUIT",
      ]);
      return replies.at(-2);
    },
  });
  sink.start();
  return {
    seen: sink.messages,
    xforward: (i: number) => sink.messages[i].extra.filter((c) => /^XFORWARD /i.test(c)),
    close: () => sink.stop(),
  };
}

/** One message from a client that XCLIENT makes orig.example[192.0.2.55] (helo original.helo). */
function sendAsOriginal(port: number, to: string, subject: string): Promise<string[]> {
  return smtpReplies(port, [
    "XCLIENT NAME=orig.example ADDR=192.0.2.55",
    "EHLO original.helo",
    "MAIL FROM:<sender@example.com>",
    `RCPT TO:<${to}>`,
    "DATA",
    `Subject: ${subject}\r\n\r\nbody\r\n.`,
    "QUIT",
  ]);
}

Deno.test({
  name: "content_filter: after-queue filter loop with XFORWARD, delivered once",
  ...opts,
  fn: async (t) => {
    const filterPort = freePort();
    const sinkPort = freePort();
    const reinjectPort = freePort();
    const sink = new TestSink(sinkPort);
    sink.start();
    const filter = startFilter(filterPort, () => reinjectPort);
    const master = (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url))) +
      `127.0.0.1:${reinjectPort} inet n - n - - smtpd -o content_filter= ` +
      "-o smtpd_authorized_xforward_hosts=127.0.0.0/8\n";
    const inst = await startInstance({
      masterCf: master,
      mainCf: [
        `content_filter = smtp:[127.0.0.1]:${filterPort}`,
        "smtp_send_xforward_command = yes",
        `relayhost = [127.0.0.1]:${sinkPort}`,
        "mynetworks = 127.0.0.0/8, 192.0.2.0/24",
        "smtpd_authorized_xclient_hosts = 127.0.0.0/8",
      ].join("\n"),
    });
    try {
      await t.step("the message goes through the filter and reaches the sink once", async () => {
        const replies = await sendAsOriginal(inst.port, "b@example.net", "filter me");
        assertMatch(replies.at(-2)!, /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/);
        const id = /queued as ([0-9A-F]+)/.exec(replies.at(-2)!)![1];
        await waitUntil(() => sink.messages.length >= 1, 20_000, "delivery to the sink");
        await new Promise((r) => setTimeout(r, 1500)); // a second copy would arrive by now
        assertEquals(sink.messages.length, 1);
        assertEquals(filter.seen.length, 1);
        const m = sink.messages[0];
        assertEquals(m.to, ["b@example.net"]);
        assert(
          m.data.startsWith("X-Filtered: yes\r\n") || m.data.includes("\r\nX-Filtered: yes\r\n"),
          m.data,
        );
        assertStringIncludes(m.data, "Received: from original.helo (orig.example [192.0.2.55])");
        assertEquals(filter.xforward(0), [
          "XFORWARD NAME=orig.example ADDR=192.0.2.55 PORT=[UNAVAILABLE]",
          `XFORWARD PROTO=ESMTP HELO=original.helo IDENT=${id} SOURCE=REMOTE`,
        ]);
        const log = await inst.log();
        assertMatch(
          log,
          new RegExp(
            `smtpd\\[\\d+\\]: [0-9A-F]+: client=localhost\\[127\\.0\\.0\\.1\\], orig_queue_id=${id}, ` +
              `orig_client=orig\\.example\\[192\\.0\\.2\\.55\\]`,
          ),
        );
        assertMatch(
          log,
          new RegExp(
            `${id}: to=<b@example\\.net>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${filterPort}, .*status=sent`,
          ),
        );
      });
    } finally {
      await inst.stop();
      filter.close();
      sink.stop();
    }
  },
});

Deno.test({
  name:
    "FILTER action: only the matching message goes through the filter; unknown transport defers",
  ...opts,
  fn: async (t) => {
    const filterPort = freePort();
    const sinkPort = freePort();
    const reinjectPort = freePort();
    const sink = new TestSink(sinkPort);
    sink.start();
    const filter = startFilter(filterPort, () => reinjectPort);
    const master = (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url))) +
      `127.0.0.1:${reinjectPort} inet n - n - - smtpd -o content_filter= ` +
      "-o smtpd_authorized_xforward_hosts=127.0.0.0/8 -o smtpd_recipient_restrictions=permit_mynetworks,reject\n";
    const inst = await startInstance({
      masterCf: master,
      mainCf: [
        `postwarden_filter_destinations = smtp:[127.0.0.1]:${filterPort}`,
        "smtp_send_xforward_command = yes",
        `relayhost = [127.0.0.1]:${sinkPort}`,
        "smtpd_recipient_restrictions = check_recipient_access inline:{ " +
        `{scan@example.net=FILTER smtp:[127.0.0.1]:${filterPort}}, ` +
        "{lost@example.net=FILTER nosuchtransport:[127.0.0.1]:10099} }, permit_mynetworks, reject",
      ].join("\n"),
    });
    const send = async (to: string, subject: string) => {
      const replies = await smtpReplies(inst.port, [
        "EHLO client.test",
        "MAIL FROM:<sender@example.com>",
        `RCPT TO:<${to}>`,
        "DATA",
        `Subject: ${subject}\r\n\r\nbody\r\n.`,
        "QUIT",
      ]);
      assertMatch(replies.at(-2)!, /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/, replies.join("\n"));
      return /queued as ([0-9A-F]+)/.exec(replies.at(-2)!)![1];
    };
    try {
      await t.step(
        "FILTER for one recipient: that message is filtered, the other is not",
        async () => {
          await send("plain@example.net", "plain");
          await send("scan@example.net", "scanned");
          await waitUntil(() => sink.messages.length >= 2, 20_000, "both delivered");
          await new Promise((r) => setTimeout(r, 1000));
          assertEquals(sink.messages.length, 2);
          assertEquals(filter.seen.length, 1);
          assertEquals(filter.seen[0].to, ["scan@example.net"]);
          const scanned = sink.messages.find((m) => m.to[0] === "scan@example.net")!;
          const plain = sink.messages.find((m) => m.to[0] === "plain@example.net")!;
          assertStringIncludes(scanned.data, "X-Filtered: yes");
          assert(!plain.data.includes("X-Filtered"), plain.data);
        },
      );
      await t.step("a filter transport not in master.cf: deferred, not delivered", async () => {
        const id = await send("lost@example.net", "nowhere");
        await waitUntil(
          async () => /mail transport unavailable/.test(await inst.log()),
          10_000,
          "deferral",
        );
        const log = await inst.log();
        assertMatch(
          log,
          new RegExp(
            `warning: ${id}: content filter nosuchtransport:\\[127\\.0\\.0\\.1\\]:10099: transport "nosuchtransport" is not defined in master\\.cf`,
          ),
        );
        assertMatch(
          log,
          new RegExp(
            `${id}: to=<lost@example\\.net>, relay=none, .*status=deferred \\(mail transport unavailable\\)`,
          ),
        );
        assert(!sink.messages.some((m) => m.to.includes("lost@example.net")));
        const q = await inst.command("postqueue.ts", ["-p"]);
        assertStringIncludes(q.stdout, id);
      });
    } finally {
      await inst.stop();
      filter.close();
      sink.stop();
    }
  },
});

Deno.test({
  name: "postwarden audit: only the filter's transport reaches the content filter",
  ...opts,
  fn: async () => {
    const { postwardenArgs } = await import("../helpers/instance.ts");
    const { run } = await import("../helpers/peers.ts");
    const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
    const dir = await Deno.makeTempDir({ prefix: "postwarden-filter-audit-" });
    await Deno.chmod(dir, 0o755);
    const filterPort = freePort();
    const listener = Deno.listen({ hostname: "127.0.0.1", port: filterPort });
    const accepting = (async () => {
      for await (const c of listener) c.close();
    })().catch(() => {});
    try {
      const conf = `${dir}/conf`;
      await Deno.mkdir(conf);
      await Deno.writeTextFile(
        `${conf}/main.cf`,
        (await Deno.readTextFile(`${root}/conf/main.cf`)) +
          `myhostname = mx.test.example\nqueue_directory = ${dir}/var\n` +
          `maillog_file = ${dir}/var/log/maillog\nmail_spool_directory = ${dir}/var/mail/\n` +
          `content_filter = scan:[127.0.0.1]:${filterPort}\n`,
      );
      await Deno.writeTextFile(
        `${conf}/master.cf`,
        (await Deno.readTextFile(`${root}/conf/master.cf`))
          .replace(/^2525(\s+inet)/m, `127.0.0.1:${freePort()}$1`) +
          "scan unix - - n - 2 smtp\n",
      );
      const r = await run(Deno.execPath(), postwardenArgs(conf, "audit"));
      assertEquals(r.code, 0, r.stderr + r.stdout);
      const blocks = r.stdout.split(/\n(?=\S)/);
      const probe = `connect to content filter [127.0.0.1]:${filterPort}`;
      const scan = blocks.find((b) => b.startsWith("scan/unix (smtp)"))!;
      assertMatch(scan, new RegExp(`^ {2}can +${probe.replace(/[[\].]/g, "\\$&")}$`, "m"));
      assertStringIncludes(scan, `127.0.0.1:${filterPort}`); // in its --allow-net
      const others = blocks.filter((b) => /^\S+\/(inet|unix) \(/.test(b) && b !== scan);
      assert(others.length >= 8, r.stdout);
      for (const b of others) {
        assertMatch(b, new RegExp(`^ {2}cannot ${probe.replace(/[[\].]/g, "\\$&")}`, "m"));
      }
    } finally {
      listener.close();
      await accepting;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
