/**
 * cleanup's virtual aliases and header checks through a whole instance:
 * smtpd answers what cleanup decides (550 with the REJECT text, 250 for
 * DISCARD), a virtual alias delivers to every address it names with
 * orig_to= logged, and HOLD keeps the message in hold/ undelivered.
 * Tables are inline: (regexp: tables are another backend's).
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { maildirFiles, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "cleanup rewriting and content checks end to end over SMTP",
  ...opts,
  fn: async (t) => {
    const inst = await startInstance({
      mainCf: [
        "virtual_alias_maps = inline:{ {team@localhost = alice@localhost, carol@localhost} }",
        "header_checks = regexp:{ {/^Subject: spam$$/ REJECT no spam please}," +
        " {/^Subject: toss$$/ DISCARD}, {/^Subject: wait$$/ HOLD} }",
      ].join("\n"),
    });
    const send = (subject: string, to = "alice@localhost") =>
      smtpSend(inst.port, {
        from: "bob@example.com",
        to: [to],
        body: `Subject: ${subject}\r\n\r\nhello\r\n`,
      });
    try {
      await t.step("REJECT: 550 5.7.1 with the table's text, Postfix's log line", async () => {
        const r = await send("spam");
        assertEquals(r.code, 550, r.replies.join("\n"));
        assertMatch(r.text, /no spam please$/);
        await waitForLog(inst, "reject: header", 5000);
        assertMatch(
          await inst.log(),
          /cleanup\[\d+\]: [0-9A-F]+: reject: header Subject: spam from localhost\[127\.0\.0\.1\]; from=<bob@example\.com> to=<alice@localhost> proto=E?SMTP helo=<[^>]+>: 5\.7\.1 no spam please/,
        );
      });
      await t.step("DISCARD: 250, nothing delivered", async () => {
        const r = await send("toss");
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitForLog(inst, "discard: header", 5000);
      });
      await t.step("a virtual alias delivers to each address, orig_to= logged", async () => {
        const r = await send("hi team", "team@localhost");
        assertEquals(r.code, 250, r.replies.join("\n"));
        await waitUntil(
          async () =>
            (await maildirFiles(inst.spool, "alice")).length === 1 &&
            (await maildirFiles(inst.spool, "carol")).length === 1,
          10_000,
          "delivery to both",
        );
        assertMatch(
          await inst.log(),
          /local\[\d+\]: [0-9A-F]+: to=<carol@localhost>, orig_to=<team@localhost>, relay=local/,
        );
      });
      await t.step("HOLD: the message waits in hold/", async () => {
        const r = await send("wait");
        assertEquals(r.code, 250, r.replies.join("\n"));
        const id = /queued as ([0-9A-F]+)/.exec(r.text)![1];
        const held = [...Deno.readDirSync(`${inst.queue}/hold`)].map((e) => e.name);
        assertEquals(held, [id]);
        await new Promise((res) => setTimeout(res, 1500));
        assert(!(await inst.log()).includes(`${id}: to=<`), "not delivered");
      });
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  // A table type Postwarden does not have stops the start (fail_closed_test);
  // a table whose file is missing is found only when cleanup opens it.
  name: "a table cleanup cannot open is reported and mail is refused with 451",
  ...opts,
  fn: async () => {
    const inst = await startInstance({ mainCf: "header_checks = regexp:/nonexistent/hc" });
    try {
      // cleanup starts on demand (lib/service/wake.ts): the message wakes it,
      // and it reports the table as it starts, as Postfix's cleanup does.
      const r = await smtpSend(inst.port, {
        from: "bob@example.com",
        to: ["alice@localhost"],
        body: "Subject: x\r\n\r\nhello\r\n",
      });
      assertEquals(r.code, 451, r.replies.join("\n"));
      await waitForLog(inst, "/nonexistent/hc", 10_000);
      assertEquals([...Deno.readDirSync(`${inst.queue}/incoming`)], []);
    } finally {
      await inst.stop();
    }
  },
});
