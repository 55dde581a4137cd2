/**
 * smtpd's client limits through a running anvil (master.cf's stock
 * service): the 11th simultaneous connection from one client gets
 * Postfix's 421 while other clients, and clients in
 * smtpd_client_event_limit_exceptions ($mynetworks), are served; a
 * message rate limit over a short anvil_rate_time_unit refuses MAIL and
 * lets it through again in the next time unit, and a recipient rate
 * limit refuses RCPT. Clients come from
 * 127.0.0.2 and 127.0.0.3 (node:net binds the source address).
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { SmtpClient } from "../helpers/smtp_client.ts";

/** An SMTP client from a chosen loopback address (node:net binds it). */
const connect = (port: number, from: string) =>
  SmtpClient.connect(port, { localAddress: from, replyTimeoutMs: 20_000 });

/** A reply as text, continuation lines joined by \n. */
const text = (reply: string[]) => reply.join("\n");

Deno.test("client limits through anvil", async (t) => {
  const inst = await startInstance({
    mainCf: [
      "mynetworks = 127.0.0.1/32",
      "smtpd_peername_lookup = no",
      "smtpd_client_connection_count_limit = 10",
      "smtpd_client_message_rate_limit = 2",
      "smtpd_client_recipient_rate_limit = 3",
      "anvil_rate_time_unit = 3s",
    ].join("\n"),
  });
  const open: SmtpClient[] = [];
  try {
    await t.step("the 11th simultaneous connection from 127.0.0.2 gets 421 4.7.0", async () => {
      for (let i = 0; i < 10; i++) {
        const c = await connect(inst.port, "127.0.0.2");
        open.push(c);
        assertMatch(text(await c.reply()), /^220 /);
      }
      const eleventh = await connect(inst.port, "127.0.0.2");
      assertEquals(
        text(await eleventh.reply()),
        "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.2",
      );
      assert(await eleventh.waitClosed(), "the session ends after the 421");
      assertMatch(
        await waitForLog(inst, "Connection concurrency limit exceeded", 10_000),
        new RegExp(
          "/smtpd\\[\\d+\\]: warning: Connection concurrency limit exceeded: 11 from " +
            `\\S+\\[127\\.0\\.0\\.2\\] for service 127\\.0\\.0\\.1:${inst.port}`,
        ),
      );
    });
    await t.step("meanwhile 127.0.0.3 and mynetworks' 127.0.0.1 are served", async () => {
      const other = await connect(inst.port, "127.0.0.3");
      assertMatch(text(await other.reply()), /^220 /);
      other.close();
      const trusted: SmtpClient[] = [];
      for (let i = 0; i < 12; i++) {
        const c = await connect(inst.port, "127.0.0.1");
        trusted.push(c);
        assertMatch(text(await c.reply()), /^220 /, "smtpd_client_event_limit_exceptions");
      }
      for (const c of trusted) c.close();
    });
    await t.step("a disconnect frees a place", async () => {
      assertEquals(text(await open[0].command("QUIT")), "221 2.0.0 Bye");
      open.shift()!.close();
      // The place is free once smtpd has told anvil: poll.
      await waitUntil(
        async () => {
          const c = await connect(inst.port, "127.0.0.2");
          const r = await c.reply().catch(() => [""]);
          c.close();
          return /^220 /.test(text(r));
        },
        10_000,
        "a free place",
      );
    });
    await t.step("message rate: the 3rd MAIL in a time unit gets 450 4.7.1", async () => {
      const c = await connect(inst.port, "127.0.0.3");
      assertMatch(text(await c.reply()), /^220 /);
      assertMatch(text(await c.command("EHLO client.example")), /^250/);
      assertEquals(text(await c.command("MAIL FROM:<a@example.org>")), "250 2.1.0 Ok");
      assertEquals(text(await c.command("RSET")), "250 2.0.0 Ok");
      assertEquals(text(await c.command("MAIL FROM:<a@example.org>")), "250 2.1.0 Ok");
      assertEquals(text(await c.command("RSET")), "250 2.0.0 Ok");
      assertEquals(
        text(await c.command("MAIL FROM:<a@example.org>")),
        "450 4.7.1 Error: too much mail from 127.0.0.3",
      );
      await new Promise((r) => setTimeout(r, 4500)); // the next anvil_rate_time_unit
      assertEquals(text(await c.command("MAIL FROM:<a@example.org>")), "250 2.1.0 Ok");
      assertEquals(text(await c.command("QUIT")), "221 2.0.0 Bye");
      c.close();
      const exceeded =
        /warning: Message delivery request rate limit exceeded: 3 from \S+\[127\.0\.0\.3\] for service /;
      assertMatch(await waitForLog(inst, exceeded, 10_000), exceeded);
    });
    await t.step("recipient rate: the 4th RCPT in a time unit gets 450 4.7.1", async () => {
      await new Promise((r) => setTimeout(r, 3500)); // a fresh anvil_rate_time_unit
      const c = await connect(inst.port, "127.0.0.3");
      assertMatch(text(await c.reply()), /^220 /);
      assertMatch(text(await c.command("EHLO client.example")), /^250/);
      assertEquals(text(await c.command("MAIL FROM:<a@example.org>")), "250 2.1.0 Ok");
      for (let i = 0; i < 3; i++) {
        assertEquals(text(await c.command("RCPT TO:<postmaster@mx.test.example>")), "250 2.1.5 Ok");
      }
      assertEquals(
        text(await c.command("RCPT TO:<postmaster@mx.test.example>")),
        "450 4.7.1 Error: too many recipients from 127.0.0.3",
      );
      assertEquals(text(await c.command("QUIT")), "221 2.0.0 Bye");
      c.close();
    });
  } finally {
    for (const c of open) c.close();
    await inst.stop();
  }
});
