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
import net from "node:net";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { startInstance, waitUntil } from "../helpers/instance.ts";

/** An SMTP client from a chosen loopback address, reading whole lines. */
class Client {
  readonly #sock: net.Socket;
  #buf = "";
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(port: number, from: string) {
    this.#sock = net.connect({ host: "127.0.0.1", port, localAddress: from });
    this.#sock.setEncoding("latin1");
    this.#sock.on("data", (d: string) => {
      this.#buf += d;
      this.#wake();
    });
    this.#sock.on("close", () => {
      this.#closed = true;
      this.#wake();
    });
    this.#sock.on("error", () => {});
  }

  #wake() {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The next complete reply (continuation lines joined by \n), or null when closed. */
  async reply(ms = 20_000): Promise<string | null> {
    const end = Date.now() + ms;
    for (;;) {
      const m = /^(?:\d{3}-[^\n]*\n)*\d{3}(?: [^\n]*)?\r?\n/.exec(this.#buf);
      if (m) {
        this.#buf = this.#buf.slice(m[0].length);
        return m[0].replace(/\r/g, "").trimEnd();
      }
      if (this.#closed) return null;
      if (Date.now() > end) throw new Error(`no reply; got ${JSON.stringify(this.#buf)}`);
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  async send(line: string): Promise<string | null> {
    this.#sock.write(`${line}\r\n`);
    return await this.reply();
  }

  /** True once the server closed the connection. */
  async closedByServer(ms = 5000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!this.#closed && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    return this.#closed;
  }

  close() {
    this.#sock.destroy();
  }
}

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
  const open: Client[] = [];
  try {
    await t.step("the 11th simultaneous connection from 127.0.0.2 gets 421 4.7.0", async () => {
      for (let i = 0; i < 10; i++) {
        const c = new Client(inst.port, "127.0.0.2");
        open.push(c);
        assertMatch((await c.reply())!, /^220 /);
      }
      const eleventh = new Client(inst.port, "127.0.0.2");
      assertEquals(
        await eleventh.reply(),
        "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.2",
      );
      assert(await eleventh.closedByServer(), "the session ends after the 421");
      await waitUntil(
        async () => (await inst.log()).includes("Connection concurrency limit exceeded"),
        10_000,
        "the warning",
      );
      assertMatch(
        await inst.log(),
        new RegExp(
          "/smtpd\\[\\d+\\]: warning: Connection concurrency limit exceeded: 11 from " +
            `\\S+\\[127\\.0\\.0\\.2\\] for service 127\\.0\\.0\\.1:${inst.port}`,
        ),
      );
    });
    await t.step("meanwhile 127.0.0.3 and mynetworks' 127.0.0.1 are served", async () => {
      const other = new Client(inst.port, "127.0.0.3");
      assertMatch((await other.reply())!, /^220 /);
      other.close();
      const trusted: Client[] = [];
      for (let i = 0; i < 12; i++) {
        const c = new Client(inst.port, "127.0.0.1");
        trusted.push(c);
        assertMatch((await c.reply())!, /^220 /, "smtpd_client_event_limit_exceptions");
      }
      for (const c of trusted) c.close();
    });
    await t.step("a disconnect frees a place", async () => {
      assertEquals(await open[0].send("QUIT"), "221 2.0.0 Bye");
      open.shift()!.close();
      // The place is free once smtpd has told anvil: poll.
      await waitUntil(
        async () => {
          const c = new Client(inst.port, "127.0.0.2");
          const r = await c.reply();
          c.close();
          return /^220 /.test(r ?? "");
        },
        10_000,
        "a free place",
      );
    });
    await t.step("message rate: the 3rd MAIL in a time unit gets 450 4.7.1", async () => {
      const c = new Client(inst.port, "127.0.0.3");
      assertMatch((await c.reply())!, /^220 /);
      assertMatch((await c.send("EHLO client.example"))!, /^250/);
      assertEquals(await c.send("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
      assertEquals(await c.send("RSET"), "250 2.0.0 Ok");
      assertEquals(await c.send("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
      assertEquals(await c.send("RSET"), "250 2.0.0 Ok");
      assertEquals(
        await c.send("MAIL FROM:<a@example.org>"),
        "450 4.7.1 Error: too much mail from 127.0.0.3",
      );
      await new Promise((r) => setTimeout(r, 4500)); // the next anvil_rate_time_unit
      assertEquals(await c.send("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
      assertEquals(await c.send("QUIT"), "221 2.0.0 Bye");
      c.close();
      assertMatch(
        await inst.log(),
        /warning: Message delivery request rate limit exceeded: 3 from \S+\[127\.0\.0\.3\] for service /,
      );
    });
    await t.step("recipient rate: the 4th RCPT in a time unit gets 450 4.7.1", async () => {
      await new Promise((r) => setTimeout(r, 3500)); // a fresh anvil_rate_time_unit
      const c = new Client(inst.port, "127.0.0.3");
      assertMatch((await c.reply())!, /^220 /);
      assertMatch((await c.send("EHLO client.example"))!, /^250/);
      assertEquals(await c.send("MAIL FROM:<a@example.org>"), "250 2.1.0 Ok");
      for (let i = 0; i < 3; i++) {
        assertEquals(await c.send("RCPT TO:<postmaster@mx.test.example>"), "250 2.1.5 Ok");
      }
      assertEquals(
        await c.send("RCPT TO:<postmaster@mx.test.example>"),
        "450 4.7.1 Error: too many recipients from 127.0.0.3",
      );
      assertEquals(await c.send("QUIT"), "221 2.0.0 Bye");
      c.close();
    });
  } finally {
    for (const c of open) c.close();
    await inst.stop();
  }
});
