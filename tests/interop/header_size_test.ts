/**
 * header_size_limit against a real Postfix 3.7: the same message, with a
 * header line far longer than the limit, a folded field that crosses it,
 * and more small fields than the limit holds in total, goes through both
 * (smtpd, cleanup, delivery) and must come out with the same header fields
 * and body. Postfix cuts a field to header_size_limit (at a line end when
 * that keeps over 90 %) and discards the excess; the fields after it stay
 * header fields, however many (so header_checks still see them). The
 * fields each server adds (Received, Return-Path, Delivered-To,
 * X-Original-To, Message-Id, Date, From) are left out of the comparison.
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX } from "../helpers/postfix.ts";

const LIMIT = 2000;

/** The message, dot-stuffing free, CRLF line ends, without the final dot. */
function message(): string {
  const folded = "X-Folded: start\r\n" +
    Array.from({ length: 80 }, (_, i) => `\tfold${i} ${"f".repeat(30)}`).join("\r\n");
  const unkind = "X-Unkind: s\r\n\t" + "u".repeat(3000);
  const smalls = Array.from({ length: 80 }, (_, i) => `X-Small-${i}: ${"s".repeat(40)}`);
  return [
    "Subject: header_size_limit",
    "X-Long: " + "a".repeat(5000),
    "X-After-Long: 1",
    folded,
    unkind,
    "X-After-Folded: 1",
    ...smalls,
    "X-Endless: " + "e".repeat(300_000),
    "X-Last: 1",
    "",
    "body line",
    "X-Not-A-Header: body",
  ].join("\r\n");
}

/** The header fields of a delivered message that the sender wrote, and the body. */
function comparable(text: string): { headers: string[]; body: string } {
  const [head, ...body] = text.split("\n\n");
  const unfolded = head.split("\n").reduce<string[]>((out, line) => {
    if (/^[ \t]/.test(line) && out.length) out[out.length - 1] += "\n" + line;
    else out.push(line);
    return out;
  }, []);
  const added = /^(Received|Return-Path|Delivered-To|X-Original-To|Message-Id|Date|From):/i;
  return { headers: unfolded.filter((h) => !added.test(h)), body: body.join("\n\n") };
}

async function send(port: number, to: string): Promise<string[]> {
  const { smtpReplies } = await import("../helpers/instance.ts");
  return await smtpReplies(port, [
    "EHLO client.example",
    "MAIL FROM:<a@sender.example>",
    `RCPT TO:<${to}>`,
    "DATA",
    message() + "\r\n.",
    "QUIT",
  ]);
}

async function waitForFile(dir: string): Promise<string> {
  const end = Date.now() + 20_000;
  for (;;) {
    try {
      for await (const e of Deno.readDir(dir)) {
        // Maildir delivery: LF line ends on disk for both.
        return (await Deno.readTextFile(`${dir}/${e.name}`)).replaceAll("\r\n", "\n");
      }
    } catch {
      // not there yet
    }
    if (Date.now() > end) throw new Error(`no message in ${dir}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test({
  name: "header_size_limit: the same header fields and body as Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const { startPostfix } = await import("../helpers/postfix.ts");
    const { startInstance } = await import("../helpers/instance.ts");
    const mainCf = `header_size_limit = ${LIMIT}\nmessage_size_limit = 2000000\n`;
    const pf = await startPostfix({ mainCf, virtualDomains: "vd.test" });
    let theirs: string;
    try {
      const replies = await send(pf.port, "u@vd.test");
      assert(replies.some((r) => r.startsWith("250 2.0.0 Ok: queued")), replies.join("\n"));
      theirs = await waitForFile(`${pf.vmail}/box/new`);
    } finally {
      await pf.stop();
    }
    const pw = await startInstance({ mainCf });
    let ours: string;
    try {
      const replies = await send(pw.port, "bob@localhost");
      assert(replies.some((r) => r.startsWith("250 2.0.0 Ok: queued")), replies.join("\n"));
      ours = await waitForFile(`${pw.spool}/bob/new`);
    } finally {
      await pw.stop();
    }
    const want = comparable(theirs);
    const got = comparable(ours);
    await t.step("Postfix cut the long fields and kept the later ones (the test's premise)", () => {
      assertEquals(want.headers.find((h) => h.startsWith("X-Long:"))?.length, LIMIT);
      assert(want.headers.includes("X-Last: 1"), want.headers.join("\n"));
      assert(want.headers.some((h) => h.startsWith("X-Small-79:")));
    });
    await t.step("the same header fields", () => assertEquals(got.headers, want.headers));
    await t.step("the same body", () => assertEquals(got.body, want.body));
  },
});
