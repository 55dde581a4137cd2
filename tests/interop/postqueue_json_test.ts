/**
 * `postqueue -j` parses as Postfix's: the same deferred mail (a message
 * with two recipients, a bounce from the null sender) queued in a live
 * Postfix 3.7 and in Postwarden, both with a dead relayhost, is listed by
 * each; every line is one JSON object whose fields, their order and their
 * JSON types (recipients with and without delay_reason included) are
 * Postfix's, and so is the spacing a line-oriented reader may rely on.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot, run } from "../helpers/peers.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";

/** A JSON value with every leaf replaced by its type; arrays by the set of their shapes. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) {
    const seen = new Map<string, unknown>();
    for (const x of v) seen.set(JSON.stringify(shape(x)), shape(x));
    return [...seen.keys()].sort().map((k) => seen.get(k));
  }
  if (v !== null && typeof v === "object") {
    return Object.entries(v).map(([k, x]) => [k, shape(x)]);
  }
  return v === null ? "null" : typeof v;
}

function lines(out: string): Record<string, unknown>[] {
  return out.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
}

Deno.test({
  name: "interop: postqueue -j has Postfix 3.7's fields, order and types",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    if (!haveRoot("a live Postfix") || !havePeer(POSTFIX)) return;
    const dead = freePort();
    const pf = await startPostfix({ mainCf: `relayhost = [127.0.0.1]:${dead}\n` });
    const inst = await startInstance({ mainCf: `relayhost = [127.0.0.1]:${dead}` });
    try {
      const mail = [
        { from: "a@example.com", to: ["x@example.net", "y@example.org"] },
        { from: "", to: ["z@example.net"] },
      ];
      for (const m of mail) {
        const body = "Subject: t\r\n\r\nhello\r\n";
        assertEquals((await smtpSend(pf.port, { ...m, body })).code, 250);
        assertEquals((await smtpSend(inst.port, { ...m, body })).code, 250);
      }
      const deferred = (l: string) => (l.match(/status=deferred/g) ?? []).length >= 3;
      await waitForLog(inst, deferred, 20_000);
      await waitForLog({ maillog: pf.maillog }, deferred, 20_000);
      const theirs = await run("/usr/sbin/postqueue", ["-c", pf.dir, "-j"]);
      const ours = await inst.command("postqueue.ts", ["-j"]);
      assertEquals([theirs.code, ours.code], [0, 0], theirs.stderr + ours.stderr);
      const t = lines(theirs.stdout);
      const o = lines(ours.stdout);
      assertEquals([t.length, o.length], [2, 2]);
      const bySender = (xs: Record<string, unknown>[]) =>
        [...xs].sort((a, b) => String(a.sender).localeCompare(String(b.sender)));
      for (const [a, b] of bySender(t).map((x, i) => [x, bySender(o)[i]])) {
        assertEquals(shape(b), shape(a));
        assertEquals(b.queue_name, a.queue_name);
        assertEquals(b.sender, a.sender); // MAILER-DAEMON for the null sender
        assertEquals(b.forced_expire, a.forced_expire);
        const rcpts = (m: Record<string, unknown>) =>
          (m.recipients as { address: string; delay_reason?: string }[]).map((r) => r.address)
            .sort();
        assertEquals(rcpts(b), rcpts(a));
      }
      // The text itself: `{"key": value, ...}` with Postfix's separators, one object a line.
      for (const out of [theirs.stdout, ours.stdout]) {
        for (const l of out.trimEnd().split("\n")) {
          assert(
            /^\{"queue_name": "[a-z]+", "queue_id": "[0-9A-Za-z]+", "arrival_time": \d+, "message_size": \d+, "forced_expire": (true|false), "sender": ".*", "recipients": \[\{"address": ".*"(, "delay_reason": ".*")?\}.*\]\}$/
              .test(l),
            l,
          );
        }
      }
    } finally {
      await inst.stop();
      await pf.stop();
    }
  },
});
