/**
 * End to end through a whole instance: SMTP in, queue, local Maildir and
 * SMTP relay out, deferral and retry, expiry bounce, sendmail, daemon
 * restart after SIGKILL, clean stop.
 */
import { assert, assertEquals, assertMatch, assertStringIncludes } from "../helpers/assert.ts";
import {
  daemonPid,
  freePort,
  killDaemon,
  maildirFiles,
  processesOf,
  smtpSend,
  startInstance,
  waitPort,
  waitUntil,
  wakeDaemon,
} from "../helpers/instance.ts";
import { TestSink } from "../../lib/testrun/sink.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { SmtpClient } from "../helpers/smtp_client.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "local delivery to a Maildir with Postfix-style logging",
  ...opts,
  fn: async () => {
    const inst = await startInstance();
    try {
      const r = await smtpSend(inst.port, {
        from: "bob@example.com",
        to: ["alice@localhost"],
        body: "Subject: hello\r\n\r\nhi alice\r\n.leading dot\r\n",
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      assertMatch(r.text, /Ok: queued as [0-9A-F]+/);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "alice")).length === 1,
        5000,
        "delivery",
      );
      const [file] = await maildirFiles(inst.spool, "alice");
      const text = await Deno.readTextFile(file);
      assert(
        text.startsWith(
          "Return-Path: <bob@example.com>\nX-Original-To: alice@localhost\n" +
            "Delivered-To: alice@localhost\n",
        ),
        text,
      );
      assertStringIncludes(text, "Received: from client.test (localhost [127.0.0.1])");
      assertStringIncludes(text, "\nhi alice\n.leading dot\n");
      assert(!text.includes("\r"), "Maildir file uses LF line ends");
      assertStringIncludes(text, "Message-Id: <");
      const log = await waitForLog(inst, "removed", 5000);
      for (
        const re of [
          /postwarden\/smtpd\[\d+\]: connect from localhost\[127\.0\.0\.1\]/,
          /smtpd\[\d+\]: [0-9A-F]+: client=localhost\[127\.0\.0\.1\]/,
          /cleanup\[\d+\]: [0-9A-F]+: message-id=</,
          /qmgr\[\d+\]: [0-9A-F]+: from=<bob@example\.com>, size=\d+, nrcpt=1 \(queue active\)/,
          /local\[\d+\]: [0-9A-F]+: to=<alice@localhost>, relay=local, delay=[\d.]+, delays=[\d.]+\/[\d.]+\/[\d.]+\/[\d.]+, dsn=2\.0\.0, status=sent/,
          /qmgr\[\d+\]: [0-9A-F]+: removed/,
          /smtpd\[\d+\]: disconnect from localhost\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5/,
        ]
      ) assertMatch(log, re);
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "relay: refused without mynetworks, relayed via relayhost, deferred and retried",
  ...opts,
  fn: async (t) => {
    const sinkPort = freePort();
    const inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${sinkPort}` });
    const sink = new TestSink(sinkPort);
    try {
      await t.step("sink down: deferred with the connect error, listed by mailq", async () => {
        const r = await smtpSend(inst.port, {
          from: "a@example.com",
          to: ["b@example.net"],
          body: "Subject: x\r\n\r\nrelay me\r\n",
        });
        assertEquals(r.code, 250);
        assertMatch(
          await waitForLog(inst, /status=deferred/, 10_000),
          /to=<b@example\.net>, relay=none, .*status=deferred \(connect to 127\.0\.0\.1\[127\.0\.0\.1\]:\d+: Connection refused\)/,
        );
        const q = await inst.command("postqueue.ts", ["-p"]);
        assertStringIncludes(q.stdout, "b@example.net");
        assertStringIncludes(q.stdout, "Connection refused");
      });
      await t.step("sink back: delivered on retry; queue empty", async () => {
        sink.start();
        const f = await inst.command("postqueue.ts", ["-f"]);
        assertEquals(f.code, 0, f.stderr);
        await waitUntil(() => sink.messages.length === 1, 15_000, "relay to sink");
        assertEquals(sink.messages[0].to, ["b@example.net"]);
        assertStringIncludes(sink.messages[0].data, "relay me");
        await waitUntil(
          async () =>
            (await inst.command("postqueue.ts", ["-p"])).stdout.includes("Mail queue is empty"),
          10_000,
          "empty queue",
        );
      });
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});

Deno.test({
  name: "expired message bounces to the sender",
  ...opts,
  fn: async () => {
    const deadPort = freePort();
    const inst = await startInstance({
      mainCf: `relayhost = [127.0.0.1]:${deadPort}\nmaximal_queue_lifetime = 0`,
    });
    try {
      const r = await smtpSend(inst.port, {
        from: "bob@localhost",
        to: ["x@example.net"],
        body: "Subject: doomed\r\n\r\nbody\r\n",
      });
      assertEquals(r.code, 250);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "bob")).length === 1,
        15_000,
        "bounce",
      );
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "bob"))[0]);
      assertStringIncludes(text, "Return-Path: <>");
      assertStringIncludes(text, "Subject: Undelivered Mail Returned to Sender");
      assertStringIncludes(text, "report-type=delivery-status");
      assertStringIncludes(text, "Final-Recipient: rfc822; x@example.net");
      assertStringIncludes(text, "Action: failed");
      // The deferral's own status, as a live Postfix 3.7 returns an expired message.
      assertStringIncludes(text, "Status: 4.4.1");
      assertStringIncludes(text, "Connection refused");
      assertMatch(
        await waitForLog(inst, /status=expired, returned to sender/),
        /status=expired, returned to sender/,
      );
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "sendmail delivers through maildrop and pickup",
  ...opts,
  fn: async () => {
    const inst = await startInstance();
    try {
      const r = await inst.command(
        "sendmail.ts",
        ["-f", "bob@example.com", "alice@localhost"],
        "Subject: via sendmail\n\nhi\n",
      );
      assertEquals(r.code, 0, r.stderr);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "alice")).length === 1,
        10_000,
        "delivery",
      );
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "alice"))[0]);
      assertStringIncludes(text, "Return-Path: <bob@example.com>");
      assertStringIncludes(text, "Subject: via sendmail");
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "master restarts a SIGKILLed daemon and stop leaves nothing behind",
  ...opts,
  fn: async () => {
    const inst = await startInstance();
    let delivered = 0;
    const send = async (body: string) => {
      const r = await smtpSend(inst.port, {
        from: "bob@example.com",
        to: ["carol@localhost"],
        body,
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      const n = ++delivered;
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "carol")).length === n,
        10_000,
        "delivery",
      );
    };
    try {
      for (const prog of ["smtpd", "cleanup", "qmgr"]) {
        // cleanup starts on demand (lib/service/wake.ts): a message wakes it.
        if (prog === "cleanup") await send("wakes cleanup\r\n");
        const pid = await daemonPid(inst, prog);
        assert(pid, `${prog} runs`);
        if (prog === "cleanup") {
          // Not restarted by master: the next message wakes a new one.
          await killDaemon(inst, pid);
          continue;
        }
        Deno.kill(pid, "SIGKILL");
        await waitUntil(
          async () => {
            const p = await daemonPid(inst, prog);
            return p !== null && p !== pid;
          },
          10_000,
          `${prog} restart`,
        );
        // With worker hosting each kill takes down the whole host, and master
        // counts a fast failure for every daemon in it: from the second on it
        // throttles their restarts (main.ts scheduleRestart), so the new host
        // may be up before its smtpd listens again.
        await waitPort(inst.port, 30_000);
      }
      await send("after restarts\r\n");
      const killed = /smtpd\/main\.ts pid \d+ killed by signal SIGKILL/;
      assertMatch(await waitForLog(inst, killed), killed);
    } finally {
      await inst.stop();
    }
    assertEquals(await processesOf(inst.conf), []);
  },
});

Deno.test({
  name: "sendmail -N success gets a delivery report; SIGHUP reload keeps serving",
  ...opts,
  fn: async () => {
    const inst = await startInstance();
    try {
      const r = await inst.command(
        "sendmail.ts",
        ["-N", "success", "-f", "bob@localhost", "alice@localhost"],
        "Subject: notify me\n\nhi\n",
      );
      assertEquals(r.code, 0, r.stderr);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "bob")).length === 1,
        10_000,
        "success DSN",
      );
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "bob"))[0]);
      assertStringIncludes(text, "Subject: Successful Mail Delivery Report");
      assertStringIncludes(text, "Action: delivered");

      const st = await inst.command("postwarden.ts", ["reload"]);
      assertEquals(st.code, 0, st.stderr);
      await waitForLog(inst, /reload -- version/, 10_000);
      await new Promise((r) => setTimeout(r, 1500));
      const s = await smtpSend(inst.port, {
        from: "bob@example.com",
        to: ["dan@localhost"],
        body: "after reload\r\n",
      });
      assertEquals(s.code, 250, s.replies.join("\n"));
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "dan")).length === 1,
        10_000,
        "delivery after reload",
      );
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "a truncated queue file goes to corrupt/ with a log line, never delivered",
  ...opts,
  fn: async () => {
    const inst = await startInstance();
    try {
      const r = await smtpSend(inst.port, {
        from: "bob@example.com",
        to: ["tom@localhost"],
        body: "whole\r\n",
      });
      assertEquals(r.code, 250);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "tom")).length === 1,
        5000,
        "delivery",
      );
      // Forge a half-written file in incoming/ as a crash mid-write would leave it
      // (a complete file cut short), then wake qmgr.
      const { QueueWriter, DirSyncer } = await import("../../lib/queue/mod.ts");
      const tmpDir = await Deno.makeTempDir();
      const id = "0000000000001AA";
      const w = new QueueWriter(tmpDir, id, new DirSyncer(tmpDir));
      await w.begin({ queueId: id, arrival: Date.now(), sender: "x@example.com" }, [{
        address: "tom@localhost",
      }]);
      await w.write(new TextEncoder().encode("Subject: half\r\n\r\nnever deliver me\r\n"));
      await w.commit();
      const full = await Deno.readFile(`${tmpDir}/${id}`);
      await Deno.writeFile(`${inst.queue}/incoming/${id}`, full.subarray(0, full.length - 7));
      await Deno.remove(tmpDir, { recursive: true });
      // The log line follows the move: wait for it, then check the file.
      await waitForLog(inst, `${id}: corrupt queue file moved to corrupt/`, 10_000);
      await Deno.stat(`${inst.queue}/corrupt/${id}`);
      await new Promise((r) => setTimeout(r, 500));
      assertEquals((await maildirFiles(inst.spool, "tom")).length, 1);
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "deferred mail is retried on its backoff schedule without a flush",
  ...opts,
  fn: async () => {
    const sinkPort = freePort();
    const inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${sinkPort}` });
    const sink = new TestSink(sinkPort);
    try {
      const r = await smtpSend(inst.port, {
        from: "a@example.com",
        to: ["b@example.net"],
        body: "later\r\n",
      });
      assertEquals(r.code, 250);
      await waitForLog(inst, /status=deferred/, 10_000);
      const deferred = [...Deno.readDirSync(`${inst.queue}/deferred`)].map((e) => e.name);
      assertEquals(deferred.length, 1);
      const st = await Deno.stat(`${inst.queue}/deferred/${deferred[0]}`);
      assert(st.mtime!.getTime() > Date.now() - 500, "next attempt time is in the file's mtime");
      sink.start();
      // minimal_backoff_time = 1s, queue_run_delay = 1s in the test config
      await waitUntil(() => sink.messages.length === 1, 20_000, "retry by the queue manager");
      await waitForLog(inst, /: removed/, 5000);
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});

Deno.test({
  name: "a restarted smtp agent does not delay mail by a backoff",
  ...opts,
  fn: async () => {
    const sinkPort = freePort();
    const sink = new TestSink(sinkPort);
    sink.start();
    const inst = await startInstance({
      mainCf:
        `relayhost = [127.0.0.1]:${sinkPort}\nminimal_backoff_time = 300s\nmaximal_backoff_time = 600s`,
    });
    try {
      // smtp starts on demand (lib/service/wake.ts): start it, then kill it.
      // (With worker hosting the host dies with it, and every daemon restarts.)
      await killDaemon(inst, await wakeDaemon(inst, "smtp"));
      for (let i = 0; i < 5; i++) {
        const r = await smtpSend(inst.port, {
          from: "a@example.com",
          to: ["b@example.net"],
          body: `m${i}\r\n`,
        });
        assertEquals(r.code, 250);
      }
      await waitUntil(
        () => sink.messages.length >= 5,
        15_000,
        "all 5 at the sink despite the agent restart",
      );
    } finally {
      sink.stop();
      await inst.stop();
    }
  },
});

Deno.test({
  name: "an undeliverable bounce goes to postmaster (2bounce)",
  ...opts,
  fn: async () => {
    const deadPort = freePort();
    const inst = await startInstance({
      mainCf:
        `relayhost = [127.0.0.1]:${deadPort}\nmaximal_queue_lifetime = 0\nbounce_queue_lifetime = 0\n` +
        "notify_classes = resource, software, 2bounce",
    });
    try {
      // A null-sender message (itself a notification) that cannot be delivered.
      const r = await smtpSend(inst.port, {
        from: "",
        to: ["x@example.net"],
        body: "Subject: dsn\r\n\r\nb\r\n",
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "postmaster")).length === 1,
        15_000,
        "postmaster copy",
      );
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "postmaster"))[0]);
      assertStringIncludes(text, "x@example.net");
      assertMatch(text, /Return-Path: <double-bounce@/);
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "soft_bounce keeps mail queued instead of bouncing it",
  ...opts,
  fn: async () => {
    const inst = await startInstance({ mainCf: "soft_bounce = yes\nmaximal_queue_lifetime = 0" });
    try {
      const r = await smtpSend(inst.port, {
        from: "bob@localhost",
        to: [".bad@localhost"],
        body: "x\r\n",
      });
      assertEquals(r.code, 250);
      await waitForLog(inst, /to=<"\.bad"@localhost>.*dsn=4\.1\.1, status=deferred/, 10_000);
      await new Promise((r) => setTimeout(r, 1500));
      assertEquals(await maildirFiles(inst.spool, "bob"), [], "no bounce to the sender");
      const q = await inst.command("postqueue.ts", ["-p"]);
      assertStringIncludes(q.stdout, '".bad"@localhost'); // quoted, as Postfix's mailq does
      assertStringIncludes(q.stdout, "unknown user");
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "reload lets an open SMTP session finish while new daemons take over",
  ...opts,
  fn: async () => {
    const inst = await startInstance();
    const conn = await SmtpClient.connect(inst.port);
    /** The next reply, which must have this code (another code failed only by hanging before). */
    const expect = async (code: string) => {
      const reply = await conn.reply();
      assertMatch(reply.at(-1)!, new RegExp(`^${code} `), reply.join("\n"));
      return reply.join("\r\n");
    };
    try {
      await expect("220");
      await conn.send("EHLO client.test\r\n");
      await expect("250");
      await conn.send("MAIL FROM:<bob@example.com>\r\n");
      await expect("250");
      await conn.send("RCPT TO:<rita@localhost>\r\n");
      await expect("250");
      const r = await inst.command("postwarden.ts", ["reload"]);
      assertEquals(r.code, 0, r.stderr);
      await waitForLog(inst, /reload -- version/, 10_000);
      // Longer than the few seconds a plain stop allows.
      await new Promise((r) => setTimeout(r, 5000));
      await conn.send("DATA\r\n");
      await expect("354");
      await conn.send("Subject: across a reload\r\n\r\nstill here\r\n.\r\n");
      assertMatch(await expect("250"), /Ok: queued as/);
      await conn.send("QUIT\r\n");
      await expect("221");
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "rita")).length === 1,
        10_000,
        "delivery",
      );
      // And the new smtpd serves new clients.
      const s = await smtpSend(inst.port, {
        from: "bob@example.com",
        to: ["sam@localhost"],
        body: "new\r\n",
      });
      assertEquals(s.code, 250);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "sam")).length === 1,
        10_000,
        "delivery",
      );
    } finally {
      conn.close();
      await inst.stop();
    }
  },
});
