/**
 * Alias expansion against the oracle: the same alias_maps (an inline:
 * table whose aliases name remote addresses only, so that no local user
 * accounts are needed) in a real Postfix and in Postwarden, each relaying
 * to its own sink. For every alias, the forwarded message must reach the
 * same recipients from the same envelope sender with the same
 * Delivered-To local part, and both local agents must log the forwarding
 * as `to=<alias@host>, relay=local, ... status=sent (forwarded as ID)`.
 *
 * The table exercises Postfix's tokenizer (missing commas, quotes,
 * comments, route addresses, groups), duplicate removal, nested aliases,
 * unmatched extensions and owner- aliases.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";
import { type SinkMessage, TestSink } from "../../lib/testrun/sink.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const ALIASES: [string, string][] = [
  ["t1", "a@remote.test, b@remote.test"],
  ["t2", "a@remote.test b@remote.test"],
  ["t3", "Joe Smith <c@remote.test>, (a comment) d@remote.test"],
  ["t4", '"e f"@remote.test'],
  ["t5", "g@remote.test, g@remote.test, G@REMOTE.test"],
  ["t6", "grp: h@remote.test, i@remote.test;"],
  ["t7", "t1, j@remote.test"],
  ["t8", "k\\,l@remote.test"],
  ["list", "m@remote.test"],
  ["owner-list", "admin@remote.test"],
  ["loop1", "loop2"],
  ["loop2", "loop1"],
  ["cmd", '"|/bin/true", n@remote.test'],
  ["file", "/dev/null"],
  ["seen", "o@remote.test"],
];
/** Recipients mailed, and what the forwarded copy is keyed by (its Delivered-To local part). */
const SENDS: [string, string][] = [
  ["t1", "t1"],
  ["t2", "t2"],
  ["t3", "t3"],
  ["t4", "t4"],
  ["t5", "t5"],
  ["t6", "t6"],
  ["t7", "t7"],
  ["t8", "t8"],
  ["t1+ext", "t1+ext"],
  ["list", "list"],
];

function inlineTable(): string {
  return "inline:{ " + ALIASES.map(([k, v]) => `{ ${k} = ${v} }`).join(", ") + " }";
}

/** Forwarded copies by Delivered-To local part: sender and sorted recipients. */
function byAlias(messages: SinkMessage[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of messages) {
    if (m.from === "") continue; // a bounce notice, compared through the log
    const dt = /^Delivered-To: ([^@\r\n]+)@/im.exec(m.data)?.[1] ?? "?";
    const prev = out.get(dt);
    const line = `from=<${m.from}> to=${[...m.to].sort().join(",")}`;
    out.set(dt, prev ? `${prev} | ${line}` : line);
  }
  return out;
}

/** The sender with its domain dropped (the two hosts have different names). */
function localSenders(map: Map<string, string>): Map<string, string> {
  return new Map(
    [...map].map(([k, v]) => [k, v.replace(/from=<([^@>]*)@[^>]*>/g, "from=<$1@HOST>")]),
  );
}

/** Messages sent besides SENDS, whose outcome is compared through the local log. */
const EXTRA = ["loop1", "cmd", "file", "seen"];
/** Forwarded messages expected: one per SENDS entry, and cmd's remote member. */
const FORWARDED = SENDS.length + 1;

/**
 * local(8)'s status lines, host names, queue ids and timings taken out,
 * sorted: "to=<t1@HOST>, orig_to=<...>, dsn=2.0.0, status=sent (forwarded as ID)".
 */
function localLines(log: string, host: string): string[] {
  const out: string[] = [];
  for (const line of log.split("\n")) {
    const m = /\/local\[\d+\]: [0-9A-Z]+: (to=<.*?>, (?:orig_to=<.*?>, )?)relay=local, .*(dsn=.*)$/
      .exec(line);
    if (!m) continue;
    out.push(
      (m[1] + m[2]).replaceAll(`@${host}`, "@HOST").replace(
        /forwarded as [0-9A-Z]+/,
        "forwarded as ID",
      ),
    );
  }
  return out.sort();
}

async function sendAll(port: number, domain: string): Promise<void> {
  for (const rcpt of [...SENDS.map(([r]) => r), ...EXTRA]) {
    // "seen" already went through this host: a forwarding loop.
    const loop = rcpt === "seen" ? `Delivered-To: seen@${domain}\r\n` : "";
    const r = await smtpSend(port, {
      from: "sender@client.test",
      to: [`${rcpt}@${domain}`],
      body: `${loop}Subject: to ${rcpt}\r\n\r\nhello\r\n`,
    });
    assertEquals(r.code, 250, `${rcpt}: ${r.replies.join(" / ")}`);
  }
}

/** Every message sent has its local(8) outcome logged. */
function allLogged(log: string, host: string): boolean {
  const lines = localLines(log, host);
  return [...SENDS.map(([r]) => r), ...EXTRA].every((r) =>
    lines.some((l) => l.includes(`<${r}@HOST>`))
  );
}

Deno.test({
  name: "interop: alias expansion and forwarding match Postfix's local(8)",
  ...opts,
  fn: async () => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const common = `alias_maps = ${inlineTable()}\nrecipient_delimiter = +\n` +
      "allow_mail_to_commands = forward\nallow_mail_to_files = include";

    const pfSink = new TestSink(freePort());
    pfSink.start();
    const pf = await startPostfix({
      mainCf: `${common}\nmydestination = $myhostname\nrelayhost = [127.0.0.1]:${pfSink.port}`,
    });
    let postfix: Map<string, string>;
    let pfLog: string;
    try {
      await sendAll(pf.port, "postfix.test.example");
      await waitUntil(() => byAlias(pfSink.messages).size >= FORWARDED, 30_000, "Postfix");
      await waitForLog(pf, (l) => allLogged(l, "postfix.test.example"), 30_000);
      // Let stragglers (a second copy that should not exist) arrive.
      await new Promise((r) => setTimeout(r, 500));
      postfix = byAlias(pfSink.messages);
      pfLog = await pf.log();
    } finally {
      await pf.stop();
      pfSink.stop();
    }

    const pwSink = new TestSink(freePort());
    pwSink.start();
    const inst = await startInstance({
      mainCf: `${common}\nrelayhost = [127.0.0.1]:${pwSink.port}`,
    });
    let postwarden: Map<string, string>;
    let pwLog: string;
    try {
      await sendAll(inst.port, "mx.test.example");
      await waitUntil(
        () => byAlias(pwSink.messages).size >= FORWARDED,
        30_000,
        "Postwarden",
      );
      await waitForLog(inst, (l) => allLogged(l, "mx.test.example"), 30_000);
      await new Promise((r) => setTimeout(r, 500));
      postwarden = byAlias(pwSink.messages);
      pwLog = await inst.log();
    } finally {
      await inst.stop();
      pwSink.stop();
    }

    assertEquals(
      Object.fromEntries(localSenders(postwarden)),
      Object.fromEntries(localSenders(postfix)),
    );
    assertEquals(postfix.size, FORWARDED, [...postfix.keys()].join(","));
    // Every local(8) outcome: forwarding, the alias loop, restricted commands
    // and files, the Delivered-To loop, with the same addresses and texts.
    const pfLines = localLines(pfLog, "postfix.test.example");
    assertEquals(localLines(pwLog, "mx.test.example"), pfLines);
    assert(pfLines.some((l) => l.includes("alias database loop for loop2")), pfLines.join("\n"));
    assert(pfLines.some((l) => l.includes("forwarded as ID")), pfLines.join("\n"));
    assert(
      pwSink.messages.every((m) =>
        m.from === "" || /^Received: by mx\.test\.example/m.test(m.data)
      ),
    );
  },
});
