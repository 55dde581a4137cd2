/**
 * The lmtp client against Postfix 3.7's lmtp(8) as the oracle: the same
 * main.cf and the same scripted LMTP servers (daemons/lmtp/_testing.ts)
 * for both, the same messages, and for every recipient the first logged
 * outcome compared field by field: relay=, dsn=, status= and the reason
 * text. The servers play what a Dovecot or a broken peer does: a
 * recipient refused at RCPT (550), one refused at its own end-of-data
 * reply (452), a 421 at end of data followed by a 250 for the next
 * recipient, a 421 greeting, and a server that closes after the first of
 * two end-of-data replies. (A missing socket's wording, checked against a
 * live Postfix once, is in daemons/lmtp/lmtp_test.ts: a table that routes
 * one domain there is not granted to our sandbox, so the two differ.)
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { onBoth } from "../helpers/differential.ts";
import { smtpReplies } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { FakeLmtpServer } from "../../daemons/lmtp/_testing.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** The outcome fields of a delivery agent's log line for a recipient. */
interface Outcome {
  relay: string;
  dsn: string;
  status: string;
  reason: string;
}

/** The first outcome logged for each recipient (later retries are ignored). */
function outcomes(log: string): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  const re =
    /\/lmtp\[\d+\]: [0-9A-F]+: to=<([^>]+)>, (?:orig_to=<[^>]*>, )?relay=(\S+), delay=\S+, delays=\S+, dsn=(\S+), status=(\S+) \((.*)\)$/;
  for (const line of log.split("\n")) {
    const m = re.exec(line);
    if (m && !out.has(m[1])) out.set(m[1], { relay: m[2], dsn: m[3], status: m[4], reason: m[5] });
  }
  return out;
}

const RECIPIENTS = [
  "ok@example.com",
  "nobody@example.com",
  "full@example.com",
  "cut@example.com",
  "after@example.com",
  "a@example.net",
  "a@example.org",
  "b@example.org",
];

Deno.test({
  name: "lmtp: outcomes and log wording as Postfix 3.7's lmtp, against the same servers",
  ...opts,
  fn: async () => {
    if (!haveRoot("the Postfix oracle") || !havePeer(POSTFIX)) return;
    const dir = await Deno.makeTempDir({ prefix: "lmtp-oracle-" });
    await Deno.chmod(dir, 0o755);
    const socket = `${dir}/lmtp`;
    const unix = new FakeLmtpServer({
      rcpt: (a) =>
        a.includes("nobody@")
          ? "550 5.1.1 <nobody@example.com> User doesn't exist: nobody@example.com"
          : "250 2.1.5 OK",
      final: (r) =>
        r.includes("full@")
          ? "452 4.2.2 <full@example.com> Mailbox is full"
          : r.includes("cut@")
          ? "421 4.3.2 Shutting down"
          : `250 2.0.0 ${r.replace(/^TO:/i, "")} Saved`,
    }, socket);
    await Deno.chmod(socket, 0o666);
    const refusing = new FakeLmtpServer({ greeting: "421 4.3.2 Not now" });
    const closing = new FakeLmtpServer({ closeAfterReplies: 1 });
    const mainCf = [
      "virtual_mailbox_domains = example.com",
      `virtual_transport = lmtp:unix:${socket}`,
      "relay_domains = example.net",
      `relay_transport = lmtp:inet:[127.0.0.1]:${refusing.port}`,
      `default_transport = lmtp:inet:[127.0.0.1]:${closing.port}`,
      "smtpd_reject_unlisted_recipient = no",
    ].join("\n");
    try {
      const { theirs, ours } = await onBoth(mainCf, deliverAll(RECIPIENTS), { label: "lmtp" });
      assertEquals(ours, theirs);
    } finally {
      await unix.close();
      await refusing.close();
      await closing.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** A use function for onBoth: one message to `rcpts`, then the first outcome of each. */
function deliverAll(rcpts: string[]) {
  return async (server: { port: number; maillog: string }): Promise<unknown> => {
    const replies = await smtpReplies(server.port, [
      "EHLO client.test",
      "MAIL FROM:<sender@example.com>",
      ...rcpts.map((r) => `RCPT TO:<${r}>`),
      "DATA",
      "Subject: oracle\r\n\r\nhello\r\n.",
      "QUIT",
    ]);
    assert(replies.at(-2)!.startsWith("250 "), replies.join("\n"));
    // Bounces to sender@example.com may go through lmtp too: only these recipients count.
    const log = await waitForLog(server, (l) => {
      const seen = outcomes(l);
      return rcpts.every((r) => seen.has(r));
    }, 60_000);
    const seen = outcomes(log);
    return Object.fromEntries(rcpts.map((r) => [r, seen.get(r)]));
  };
}

Deno.test({
  name: "lmtp: refused greetings and LHLO replies as Postfix 3.7's lmtp",
  ...opts,
  fn: async () => {
    if (!haveRoot("the Postfix oracle") || !havePeer(POSTFIX)) return;
    const lhlo5 = new FakeLmtpServer({ lhlo: "500 5.5.1 Unknown command" });
    const greet5 = new FakeLmtpServer({ greeting: "554 5.3.2 Go away" });
    const lhlo4 = new FakeLmtpServer({ lhlo: "451 4.3.0 Try later" });
    const mainCf = [
      "virtual_mailbox_domains = example.com",
      `virtual_transport = lmtp:inet:[127.0.0.1]:${lhlo5.port}`,
      "relay_domains = example.net",
      `relay_transport = lmtp:inet:[127.0.0.1]:${greet5.port}`,
      `default_transport = lmtp:inet:[127.0.0.1]:${lhlo4.port}`,
      "smtpd_reject_unlisted_recipient = no",
    ].join("\n");
    try {
      const rcpts = ["x@example.com", "y@example.net", "z@example.org"];
      const { theirs, ours } = await onBoth(mainCf, deliverAll(rcpts), { label: "greetings" });
      assertEquals(ours, theirs);
    } finally {
      await lhlo5.close();
      await greet5.close();
      await lhlo4.close();
    }
  },
});
