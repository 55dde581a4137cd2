/**
 * SMTP smuggling (SEC Consult, December 2023, and the variants published
 * since) against a live instance: inside one DATA, a sequence that some
 * server might take for the end of the message, then a whole second
 * transaction (MAIL FROM, RCPT TO, DATA, content, end). Whatever the
 * sequence, Postwarden must produce exactly one transaction: the smuggled
 * text stays inside the first message, or the message is refused
 * (smtpd_forbid_bare_newline = reject), and the smuggled recipient never
 * gets mail. Checked with smtpd_forbid_bare_newline = normalize and =
 * reject, for a client that is not excluded
 * (smtpd_forbid_bare_newline_exclusions empty: the test client is in
 * mynetworks, and an excluded client gets Postfix's "no"). Pipelining
 * enforcement is off, so that only the end-of-data logic stands between
 * the attacker and a second transaction.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { maildirFiles, startInstance, waitUntil } from "../helpers/instance.ts";
import { countLines, waitForLog } from "../helpers/maillog.ts";
import { parsedReply, SmtpClient, SmtpConnectionClosed } from "../helpers/smtp_client.ts";

/** Name and the sequence a lenient or confused server could take for end-of-data. */
const VARIANTS: [string, string][] = [
  ["lf-dot-lf", "\n.\n"],
  ["lf-dot-crlf", "\n.\r\n"],
  ["crlf-dot-lf", "\r\n.\n"],
  ["cr-dot-cr", "\r.\r"],
  ["crlf-dot-cr", "\r\n.\r"],
  ["cr-dot-crlf", "\r.\r\n"],
  ["crlf-nul-dot-crlf", "\r\n\x00.\r\n"],
  ["crlf-dot-nul-crlf", "\r\n.\x00\r\n"],
  ["crcrlf-dot-crcrlf", "\r\r\n.\r\r\n"],
  ["crlf-dot-crcrlf", "\r\n.\r\r\n"],
  ["lf-dot-lf-crlf", "\n.\n\r\n"],
  ["crlf-dot-space-crlf", "\r\n. \r\n"],
];

/** One session: returns every reply line (last line of each reply) in order. */
async function session(port: number, victim: string, evil: string, seq: string) {
  const conn = await SmtpClient.connect(port);
  const replies: string[] = [];
  let closed = false;
  const want = async (n: number) => {
    while (replies.length < n && !closed) {
      try {
        const r = parsedReply(await conn.reply());
        replies.push(`${r.code} ${r.lines.at(-1) ?? ""}`);
      } catch (e) {
        if (!(e instanceof SmtpConnectionClosed)) throw e;
        closed = true;
      }
    }
  };
  try {
    await want(1);
    await conn.send("EHLO attacker.example\r\n");
    await want(2);
    await conn.send(`MAIL FROM:<a@attacker.example>\r\nRCPT TO:<${victim}>\r\n`);
    await want(4);
    await conn.send("DATA\r\n");
    await want(5);
    const content = `Subject: ${victim}\r\n\r\nbody` + seq +
      `MAIL FROM:<smuggler@attacker.example>\r\nRCPT TO:<${evil}>\r\nDATA\r\n` +
      `smuggled text\r\n.\r\nQUIT\r\n`;
    await conn.send(content);
    // Sent after the smuggled part: ends the first message if nothing ended it before.
    await want(6);
    if (!closed) await conn.send("\r\n.\r\nQUIT\r\n").catch(() => {});
    await want(20);
  } finally {
    conn.close();
  }
  return replies;
}

for (const mode of ["normalize", "reject"]) {
  Deno.test({
    name: `SMTP smuggling variants give one transaction (smtpd_forbid_bare_newline = ${mode})`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const inst = await startInstance({
        mainCf: [
          `smtpd_forbid_bare_newline = ${mode}`,
          "smtpd_forbid_bare_newline_exclusions =",
          "smtpd_forbid_unauth_pipelining = no",
        ].join("\n"),
      });
      try {
        const accepted: string[] = [];
        for (const [i, [name, seq]] of VARIANTS.entries()) {
          const victim = `victim${i}@localhost`;
          const replies = await session(inst.port, victim, `evil${i}@localhost`, seq);
          const what = `${name}: ${JSON.stringify(replies)}`;
          assertEquals(replies.filter((r) => r.startsWith("354")).length, 1, what);
          // Reply lines without their enhanced codes (ReplyParser keeps those apart).
          assertEquals(replies.filter((r) => r === "250 Ok").length, 2, what);
          const queued = replies.filter((r) => /^250 Ok: queued as /.test(r));
          const refused = replies.filter((r) => /^550 .*bare <LF> received$/.test(r));
          assertEquals(queued.length + refused.length, 1, what);
          if (mode === "normalize") assertEquals(queued.length, 1, what);
          if (queued.length) accepted.push(`victim${i}`);
        }
        // Every bare-LF variant is refused in reject mode; the others are not bare LF.
        if (mode === "reject") {
          assertEquals(
            accepted.length,
            VARIANTS.filter(([, s]) => !/(^|[^\r])\n/.test(s)).length,
            accepted.join(" "),
          );
        }
        await waitUntil(
          async () => {
            for (const user of accepted) {
              if ((await maildirFiles(inst.spool, user)).length !== 1) return false;
            }
            return true;
          },
          30_000,
          "the victims' mail",
        );
        for (const user of accepted) {
          const text = await Deno.readTextFile((await maildirFiles(inst.spool, user))[0]);
          assert(text.includes("smuggled text"), `${user}: ${text}`);
          assert(text.includes("RCPT TO:<evil"), `${user}: ${text}`);
        }
        // Anything smuggled would have been queued by now: nothing is left, no evil mailbox.
        const q = await inst.command("postqueue.ts", ["-p"]);
        assert(/empty/i.test(q.stdout), q.stdout + q.stderr);
        for (let i = 0; i < VARIANTS.length; i++) {
          assertEquals(await maildirFiles(inst.spool, `evil${i}`), [], `evil${i}`);
        }
        // The log caught up with every session (and every accepted message's removal):
        // read before that, a smuggled sender's line could still be on its way.
        const log = await waitForLog(
          inst,
          (l) =>
            countLines(l, / disconnect from /) > VARIANTS.length &&
            countLines(l, /: removed$/) >= accepted.length,
          10_000,
        );
        assert(!/from=<smuggler@attacker\.example>/.test(log), "a smuggled sender reached the log");
      } finally {
        await inst.stop();
      }
    },
  });
}
