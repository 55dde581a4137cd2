/**
 * smtpd_milters end to end, through a whole instance and a scripted milter
 * (lib/milter/_testing.ts): smtpd reaches the milter from its sandbox (the
 * grant is exactly the milter's host:port), the events carry Postfix's
 * macros, a milter's refusal at RCPT and at the end of the message is the
 * client's reply and Postfix's log line, its edits reach the delivered
 * message (header inserted, recipient added, body replaced), DISCARD drops
 * the message, quarantine puts it in hold/, and a milter that is down or
 * silent gets milter_default_action.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import {
  auditSections,
  maildirFiles,
  smtpReplies,
  smtpSend,
  startInstance,
  waitUntil,
} from "../helpers/instance.ts";
import { FakeMilter, reply } from "../../lib/milter/_testing.ts";
import {
  decodeStrings,
  SMFIC_BODYEOB,
  SMFIC_HEADER,
  SMFIC_MAIL,
  SMFIC_RCPT,
} from "../../lib/milter/protocol.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const dec = new TextDecoder();

/** Waits until the instance's log matches `re` (log lines arrive through master). */
async function logged(inst: { log(): Promise<string> }, re: RegExp): Promise<void> {
  try {
    await waitUntil(async () => re.test(await inst.log()), 5000, `log ${re.source}`);
  } catch {
    await logged(inst, re);
  }
}

/** A milter that decides by the Subject: header of each message. */
function subjectMilter(): FakeMilter {
  let subject = "";
  return FakeMilter.start({
    handler(cmd, data) {
      if (cmd === SMFIC_RCPT && decodeStrings(data)[0] === "<spam@localhost>") {
        return [reply.replyCode("550 5.7.1 Go away, spam")];
      }
      if (cmd === SMFIC_HEADER) {
        const [name, value] = decodeStrings(data);
        if (name.toLowerCase() === "subject") subject = value.trim();
      }
      if (cmd !== SMFIC_BODYEOB) return;
      switch (subject) {
        case "edit me":
          return [
            reply.insertHeader(0, "X-Milter", "seen"),
            reply.insertHeader(1, "X-One", "one"),
            reply.addRcpt("<copy@localhost>"),
            reply.accept(),
          ];
        case "replace me":
          return [reply.replaceBody("replaced\r\n"), reply.continue()];
        case "refuse me":
          return [reply.replyCode("554 5.7.1 Content refused")];
        case "drop me":
          return [reply.discard()];
        case "hold me":
          return [reply.quarantine("looks odd"), reply.accept()];
      }
    },
  });
}

Deno.test({
  name: "smtpd_milters: events, refusals, edits, discard and quarantine, end to end",
  ...opts,
  fn: async (t) => {
    const milter = subjectMilter();
    const inst = await startInstance({ mainCf: `smtpd_milters = ${milter.name}` });
    const send = (to: string[], subject: string, body = "body\r\n") =>
      smtpSend(inst.port, {
        from: "sender@example.com",
        to,
        body: `Subject: ${subject}\r\n\r\n${body}`,
      });
    const mailbox = async (user: string, subject: string) => {
      for (const f of await maildirFiles(inst.spool, user)) {
        const text = await Deno.readTextFile(f);
        if (text.includes(`Subject: ${subject}\n`)) return text;
      }
      return null;
    };
    try {
      await t.step("a milter's RCPT reply refuses that recipient only", async () => {
        const r = await send(["spam@localhost", "alice@localhost"], "plain");
        assertEquals(r.code, 250, r.replies.join("\n"));
        assert(r.replies.includes("550 Go away, spam"), r.replies.join("\n"));
        await logged(
          inst,
          /NOQUEUE: milter-reject: RCPT from localhost\[127\.0\.0\.1\]: 550 5\.7\.1 Go away, spam; from=<sender@example\.com> to=<spam@localhost> proto=ESMTP helo=<client\.test>/,
        );
        await waitUntil(async () => (await mailbox("alice", "plain")) !== null, 10_000, "delivery");
        // Postfix's default macros came with the events.
        const mail = milter.macrosFor(SMFIC_MAIL)!;
        assertEquals(mail["{mail_addr}"], "sender@example.com");
        assertMatch(milter.macrosFor("C")?.j ?? "", /./);
        assertEquals(milter.macrosFor("C")?._, "localhost [127.0.0.1]");
      });
      await t.step("edits: a header inserted first, a recipient added", async () => {
        const r = await send(["alice@localhost"], "edit me");
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitUntil(async () => (await mailbox("copy", "edit me")) !== null, 10_000, "copy");
        const text = (await mailbox("alice", "edit me"))!;
        // Indexes count smtpd's Received: header, which the milter does not see: 0 and 1 both
        // land above it, as with Postfix 3.7 (checked with the same milter script).
        assertMatch(text, /\nX-Milter: seen\nX-One: one\nReceived: from client\.test /);
      });
      await t.step("the body replaced", async () => {
        const r = await send(["alice@localhost"], "replace me", "original\r\n");
        assertEquals(r.code, 250);
        await waitUntil(
          async () => (await mailbox("alice", "replace me")) !== null,
          10_000,
          "delivery",
        );
        const text = (await mailbox("alice", "replace me"))!;
        assert(text.endsWith("\n\nreplaced\n"), text);
      });
      await t.step(
        "a refusal at the end of the message: the client's reply, nothing queued",
        async () => {
          const r = await send(["alice@localhost"], "refuse me");
          assertEquals(r.code, 554, r.replies.join("\n"));
          assertEquals(r.text, "Content refused");
          await logged(
            inst,
            /[0-9A-F]+: milter-reject: END-OF-MESSAGE from localhost\[127\.0\.0\.1\]: 554 5\.7\.1 Content refused; from=<sender@example\.com> to=<alice@localhost>/,
          );
        },
      );
      await t.step("DISCARD: 250, nothing delivered", async () => {
        const r = await send(["alice@localhost"], "drop me");
        assertEquals(r.code, 250);
        await logged(inst, /milter-discard: END-OF-MESSAGE from localhost/);
        await new Promise((r) => setTimeout(r, 1000));
        assertEquals(await mailbox("alice", "drop me"), null);
      });
      await t.step("quarantine: the message waits in hold/", async () => {
        const r = await send(["alice@localhost"], "hold me");
        assertEquals(r.code, 250);
        const id = /queued as ([0-9A-F]+)/.exec(r.text)![1];
        const q = await inst.command("postqueue.ts", ["-p"]);
        assertMatch(q.stdout, new RegExp(`${id}!`));
        await logged(inst, new RegExp(`${id}: milter-hold: .*looks odd`));
      });
      await t.step("the milter saw each transaction end (SMFIC_ABORT, as Postfix)", () => {
        assert(milter.commands().includes("A"), milter.commands().join(""));
      });
    } finally {
      await inst.stop();
      await milter.close();
    }
  },
});

Deno.test({
  name: "smtpd_milters: a milter that is down or silent gets its default action",
  ...opts,
  fn: async (t) => {
    const silent = FakeMilter.start({
      handler(cmd) {
        if (cmd === SMFIC_MAIL) return []; // never answers
      },
    });
    // A port nothing listens on.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const downPort = probe.addr.port;
    probe.close();
    try {
      await t.step("down, milter_default_action = tempfail: 451 4.7.1 at MAIL", async () => {
        const inst = await startInstance({ mainCf: `smtpd_milters = inet:127.0.0.1:${downPort}` });
        try {
          const r = await smtpSend(inst.port, {
            from: "a@example.com",
            to: ["alice@localhost"],
            body: "Subject: x\r\n\r\nb\r\n",
          });
          assertEquals(r.code, 451, r.replies.join("\n"));
          assertEquals(r.text, "Service unavailable - try again later");
          await logged(inst, /milter inet:127\.0\.0\.1:\d+: .*default action: tempfail/);
        } finally {
          await inst.stop();
        }
      });
      await t.step(
        "silent, command_timeout=1s, default_action=accept: mail goes through",
        async () => {
          const inst = await startInstance({
            mainCf: `smtpd_milters = { ${silent.name}, command_timeout=1s, default_action=accept }`,
          });
          try {
            const started = Date.now();
            const r = await smtpSend(inst.port, {
              from: "a@example.com",
              to: ["alice@localhost"],
              body: "Subject: through\r\n\r\nb\r\n",
            });
            assertEquals(r.code, 250, r.replies.join("\n"));
            assert(Date.now() - started >= 900, "waited for the milter's timeout");
            await logged(inst, /timeout.*default action: accept/);
          } finally {
            await inst.stop();
          }
        },
      );
    } finally {
      await silent.close();
    }
  },
});

// The message's bytes as the milter saw them: headers one by one, then the body.
Deno.test({
  name:
    "smtpd_milters: the milter sees the headers (not smtpd's Received:) and the body without dots",
  ...opts,
  fn: async () => {
    const headers: string[] = [];
    let body = "";
    const milter = FakeMilter.start({
      handler(cmd, data) {
        if (cmd === SMFIC_HEADER) headers.push(decodeStrings(data).join(":"));
        if (cmd === "B") body += dec.decode(data);
      },
    });
    const inst = await startInstance({ mainCf: `smtpd_milters = ${milter.name}` });
    try {
      const r = await smtpSend(inst.port, {
        from: "a@example.com",
        to: ["alice@localhost"],
        body: "Subject: s\r\nX-Folded: one\r\n two\r\n\r\n.dot line\r\nend\r\n",
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      // Not smtpd's own Received: header, as Postfix (3.7, checked) does not show its own.
      assertEquals(headers, ["Subject:s", "X-Folded:one\n two"]);
      assertEquals(body, ".dot line\r\nend\r\n");
    } finally {
      await inst.stop();
      await milter.close();
    }
  },
});

Deno.test({
  name:
    "smtpd_milters: a CONNECT refusal answers MAIL FROM; 421 hangs up; BDAT and unknown commands",
  ...opts,
  fn: async (t) => {
    const refuser = FakeMilter.start({
      handler(cmd) {
        if (cmd === "C") return [reply.replyCode("550 5.7.1 Not from here")];
      },
    });
    const closer = FakeMilter.start({
      handler(cmd) {
        if (cmd === "H") return [reply.shutdown()];
      },
    });
    const editor = FakeMilter.start({
      handler(cmd) {
        if (cmd === "U") return [reply.replyCode("502 5.5.1 Not here either")];
        if (cmd === SMFIC_BODYEOB) return [reply.addHeader("X-Chunked", "yes"), reply.continue()];
      },
    });
    try {
      await t.step("CONNECT refused: greeting and EHLO as usual, MAIL FROM gets it", async () => {
        const inst = await startInstance({ mainCf: `smtpd_milters = ${refuser.name}` });
        try {
          const r = await smtpReplies(inst.port, ["EHLO c.test", "MAIL FROM:<a@example.com>"]);
          assertMatch(r[0], /^220 /);
          assertMatch(r[1], /^250 /);
          assertEquals(r[2], "550 5.7.1 Not from here");
          await logged(
            inst,
            /NOQUEUE: milter-reject: MAIL from localhost\[127\.0\.0\.1\]: 550 5\.7\.1 Not from here/,
          );
        } finally {
          await inst.stop();
        }
      });
      await t.step("SMFIR_SHUTDOWN at HELO: 421 and the session ends", async () => {
        const inst = await startInstance({ mainCf: `smtpd_milters = ${closer.name}` });
        try {
          const r = await smtpReplies(inst.port, ["EHLO c.test"]);
          assertEquals(r[1], "421 4.7.0 Server closing connection");
          await logged(inst, /disconnect after milter shutdown/);
        } finally {
          await inst.stop();
        }
      });
      await t.step(
        "BDAT content goes to milters; an unknown command gets the milter's reply",
        async () => {
          const inst = await startInstance({ mainCf: `smtpd_milters = ${editor.name}` });
          try {
            const msg = "Subject: chunked\r\n\r\nbody\r\n";
            const r = await smtpReplies(inst.port, [
              "EHLO c.test",
              "FOO bar",
              "MAIL FROM:<a@example.com>",
              "RCPT TO:<alice@localhost>",
              `BDAT ${msg.length} LAST\r\n${msg}`,
            ]);
            assertEquals(r[2], "502 5.5.1 Not here either");
            assertMatch(r[5], /^250 2\.0\.0 Ok: \d+ bytes queued as /);
            await waitUntil(
              async () => {
                for (const f of await maildirFiles(inst.spool, "alice")) {
                  if ((await Deno.readTextFile(f)).includes("X-Chunked: yes\n")) return true;
                }
                return false;
              },
              10_000,
              "delivery with the milter's header",
            );
          } finally {
            await inst.stop();
          }
        },
      );
    } finally {
      await refuser.close();
      await closer.close();
      await editor.close();
    }
  },
});

Deno.test({
  name: "non_smtpd_milters: sendmail's mail meets the milters in cleanup, with emulated events",
  ...opts,
  fn: async (t) => {
    let subject = "";
    const milter = FakeMilter.start({
      handler(cmd, data) {
        if (cmd === SMFIC_HEADER) {
          const [name, value] = decodeStrings(data);
          if (name.toLowerCase() === "subject") subject = value.trim();
        }
        if (cmd !== SMFIC_BODYEOB) return;
        if (subject === "tempfail me") return [reply.tempfail()];
        return [reply.addHeader("X-Local-Milter", "seen"), reply.continue()];
      },
    });
    const inst = await startInstance({ mainCf: `non_smtpd_milters = ${milter.name}` });
    const submit = (subject: string) =>
      inst.command(
        "sendmail.ts",
        ["-f", "root@localhost", "alice@localhost"],
        `Subject: ${subject}\n\nhi\n`,
      );
    try {
      await t.step("events as Postfix emulates them; the edit reaches the mailbox", async () => {
        const r = await submit("local one");
        assertEquals(r.code, 0, r.stderr);
        let text = "";
        await waitUntil(
          async () => {
            for (const f of await maildirFiles(inst.spool, "alice")) {
              const t = await Deno.readTextFile(f);
              if (t.includes("Subject: local one\n")) text = t;
            }
            return text !== "";
          },
          15_000,
          "delivery",
        );
        assertMatch(text, /\nX-Local-Milter: seen\n/);
        const c = milter.received.filter((x) => x.cmd === "C")[0];
        assertEquals(c.args.slice(0, 2), ["localhost", "4"]);
        assertEquals(decodeStrings(milter.received.find((x) => x.cmd === SMFIC_MAIL)!.data), [
          "<root@localhost>",
        ]);
        assertEquals(decodeStrings(milter.received.find((x) => x.cmd === SMFIC_RCPT)!.data), [
          "<alice@localhost>",
        ]);
        // Unlike smtpd's milters, these see the headers cleanup added.
        const headers = milter.received.filter((x) => x.cmd === SMFIC_HEADER).map((x) =>
          decodeStrings(x.data)[0]
        );
        assert(headers.includes("Message-Id") && headers.includes("Date"), headers.join(" "));
      });
      await t.step("a tempfail keeps the message in maildrop/ for later", async () => {
        const r = await submit("tempfail me");
        assertEquals(r.code, 0, r.stderr); // sendmail's job ends at maildrop/
        await logged(
          inst,
          /milter-reject: END-OF-MESSAGE from local: 451 4\.7\.1 Service unavailable/,
        );
        await logged(inst, /cleanup rejected the message: 451 4\.7\.1 .*keeping the file/);
      });
    } finally {
      await inst.stop();
      await milter.close();
    }
  },
});

Deno.test({
  name:
    "milters in postwarden audit: smtpd may reach smtpd_milters, cleanup non_smtpd_milters, nobody else",
  ...opts,
  fn: async () => {
    const smtpdMilter = FakeMilter.start();
    const localMilter = FakeMilter.start();
    const inst = await startInstance({
      mainCf: `smtpd_milters = ${smtpdMilter.name}\nnon_smtpd_milters = ${localMilter.name}`,
    });
    try {
      const { sections, output } = await auditSections(inst);
      const a = smtpdMilter.name.replace(/^inet:/, "");
      const b = localMilter.name.replace(/^inet:/, "");
      const text = (name: string) =>
        (sections.get(name) ?? []).filter((l) => !l.startsWith("  host flags:")).join("\n");
      assert(text("smtpd").includes(a), `smtpd's audit lacks ${a}:\n${output}`);
      assert(!text("smtpd").includes(b), `smtpd may reach ${b}:\n${text("smtpd")}`);
      assert(text("cleanup").includes(b), `cleanup's audit lacks ${b}:\n${output}`);
      assert(!text("cleanup").includes(a), `cleanup may reach ${a}:\n${text("cleanup")}`);
      for (const [name] of sections) {
        if (name === "smtpd" || name === "cleanup") continue;
        assert(!text(name).includes(a) && !text(name).includes(b), `${name}:\n${text(name)}`);
      }
    } finally {
      await inst.stop();
      await smtpdMilter.close();
      await localMilter.close();
    }
  },
});
