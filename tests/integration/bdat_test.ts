/**
 * BDAT (RFC 3030) through a live instance: a message of several megabytes
 * sent in pipelined chunks of odd sizes (splitting CRLFs and a bare LF)
 * reaches the mailbox intact, with smtpd's Received header first, through
 * the real daemons (smtpd streams each chunk to cleanup as it arrives);
 * the replies count the bytes as Postfix does.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { maildirFiles, startInstance, waitUntil } from "../helpers/instance.ts";
import { parsedReply, SmtpClient } from "../helpers/smtp_client.ts";

const enc = new TextEncoder();

Deno.test({
  name: "BDAT: a multi-megabyte message in pipelined chunks is delivered intact",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const inst = await startInstance();
    const conn = await SmtpClient.connect(inst.port, { replyTimeoutMs: 60_000 });
    try {
      const replies: string[] = [];
      const want = async (n: number) => {
        while (replies.length < n) {
          const r = parsedReply(await conn.reply());
          replies.push(`${r.code} ${r.lines.at(-1) ?? ""}`);
        }
      };
      await want(1);
      await conn.send("EHLO client.example\r\n");
      await want(2);
      // A body of 40 000 numbered lines (about 3 MB), one with a bare LF.
      const lines = ["Subject: chunked", "", "first line"];
      for (let i = 0; i < 40_000; i++) lines.push(`line ${i} ${"x".repeat(64)}`);
      const body = enc.encode(lines.join("\r\n") + "\nbare-lf line\r\nlast line\r\n");
      // Chunks of odd sizes, so that CRLFs and the bare LF fall across chunk ends.
      const sizes = [1, 2, 777_777, 1_000_003, 65_537];
      const chunks: Uint8Array[] = [];
      let off = 0;
      for (const s of sizes) {
        chunks.push(body.subarray(off, off + s));
        off += s;
      }
      chunks.push(body.subarray(off));
      const mail = "MAIL FROM:<a@example.org>\r\nRCPT TO:<bob@localhost>\r\n";
      const parts: Uint8Array[] = [enc.encode(mail)];
      chunks.forEach((c, i) => {
        const last = i === chunks.length - 1 ? " LAST" : "";
        parts.push(enc.encode(`BDAT ${c.length}${last}\r\n`), c);
      });
      for (const p of parts) await conn.send(p);
      await want(2 + 2 + chunks.length);
      const decoded = body.length + 1; // the bare LF becomes CRLF
      assertEquals(replies.slice(2, 4), ["250 Ok", "250 Ok"]);
      // The bare LF is in the last chunk: before it, the count is the bytes sent.
      assertEquals(replies.at(-2), `250 Ok: ${body.length - chunks.at(-1)!.length} bytes`);
      assertMatch(replies.at(-1)!, new RegExp(`^250 Ok: ${decoded} bytes queued as \\w+$`));
      await conn.send("QUIT\r\n");
      await want(3 + 2 + chunks.length);
      await waitUntil(async () => (await maildirFiles(inst.spool, "bob")).length === 1, 30_000);
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "bob"))[0]);
      assertMatch(
        text,
        /^(Return-Path: [^\n]*\n)?(X-Original-To: [^\n]*\n)?(Delivered-To: [^\n]*\n)?Received: from client\.example/,
      );
      // cleanup adds Message-Id, Date and From to the header; the body is as sent.
      const got = text.replaceAll("\r\n", "\n");
      assert(got.includes("\nSubject: chunked\n"), got.slice(0, 600));
      const expected = lines.slice(2).join("\n") + "\nbare-lf line\nlast line\n";
      assertEquals(
        got.slice(got.indexOf("\n\n") + 2) === expected,
        true,
        "the body arrives intact",
      );
    } finally {
      conn.close();
      await inst.stop();
    }
  },
});
