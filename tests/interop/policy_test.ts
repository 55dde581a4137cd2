/**
 * check_policy_service against real policy servers from Debian, started
 * here on loopback ports with temporary folders, differentially: a real
 * Postfix 3.7 and a Postwarden instance get the same main.cf and the same
 * sessions, and every reply must be the same.
 *
 * - postfwd (postfwd1 in daemon mode) with the rule
 *   `id=R1; recipient==blocked@example.com; action=REJECT no thanks`:
 *   554 5.7.1 <blocked@example.com>: Recipient address rejected: no thanks.
 * - postgrey (--delay=2): the first attempt is greylisted (its
 *   DEFER_IF_PERMIT: 450 4.7.1 ... Greylisted, see ...), the retry after
 *   the delay is accepted (postgrey answers PREPEND X-Greylist: ..., kept
 *   for the message) and so is its DATA.
 * - a restriction class naming a policy service where nothing listens:
 *   the default action, 451 4.3.5 ... Server configuration problem.
 *
 * The two servers greylist different senders, so they do not share
 * postgrey's triplets. Needs root (Postfix, and postgrey/postfwd drop to
 * nobody); without the peers or root the test is skipped loudly, under
 * CI=true it fails.
 *
 * @module
 */
import { assertEquals, assertMatch } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { comparableReplies, freePort, smtpReplies, waitPort } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { POSTFIX } from "../helpers/postfix.ts";

const POSTGREY = "/usr/sbin/postgrey";
const POSTFWD = "/usr/sbin/postfwd1";
const DELAY = 2;

/** Starts a daemon that forks away (its pid from its pid file), or one that stays; stop() ends it. */
async function startPeer(
  cmd: string,
  args: string[],
  port: number,
  pidfile?: string,
): Promise<{ stop(): Promise<void> }> {
  const proc = new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).spawn();
  await waitPort(port, 20_000);
  return {
    async stop() {
      const pid = pidfile ? Number((await Deno.readTextFile(pidfile).catch(() => "0")).trim()) : 0;
      for (const p of [proc.pid, pid]) {
        if (p <= 0) continue;
        try {
          Deno.kill(p, "SIGTERM");
        } catch {
          // gone
        }
      }
      await proc.status;
    },
  };
}

/** Replies with queue ids replaced, for comparing. */
function comparable(commands: string[], replies: string[]): string[] {
  return comparableReplies(commands, replies).map((l) =>
    l.replace(/queued as [0-9A-Za-z]+/, "queued as ID")
  );
}

const session = (sender: string) => [
  "EHLO client.example",
  `MAIL FROM:<${sender}>`,
  "RCPT TO:<blocked@example.com>",
  "RCPT TO:<dead@example.com>",
  "RCPT TO:<user@example.com>",
  "QUIT",
];

const retry = (sender: string) => [
  "EHLO client.example",
  `MAIL FROM:<${sender}>`,
  "RCPT TO:<user@example.com>",
  "DATA",
  "Subject: greylisted\r\n\r\nhello\r\n.",
  "QUIT",
];

Deno.test({
  name: "check_policy_service: postgrey and postfwd, the same replies as Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (
      !havePeer(POSTFIX) || !havePeer(POSTGREY) || !havePeer(POSTFWD) ||
      !haveRoot("a real Postfix, postgrey and postfwd")
    ) return;
    const { startPostfix } = await import("../helpers/postfix.ts");
    const { startInstance } = await import("../helpers/instance.ts");
    const dir = await Deno.makeTempDir({ prefix: "policy-test-" });
    await Deno.chmod(dir, 0o755);
    await Deno.mkdir(`${dir}/postgrey`);
    await Deno.chown(`${dir}/postgrey`, 65534, 65534);
    await Deno.writeTextFile(
      `${dir}/rules`,
      "id=R1; recipient==blocked@example.com; action=REJECT no thanks\n",
      { mode: 0o644 },
    );
    const greyPort = freePort();
    const fwdPort = freePort();
    const deadPort = freePort();
    const peers: { stop(): Promise<void> }[] = [];
    const servers: { stop(): Promise<void> }[] = [];
    try {
      peers.push(
        await startPeer(POSTGREY, [
          `--inet=127.0.0.1:${greyPort}`,
          `--dbdir=${dir}/postgrey`,
          `--delay=${DELAY}`,
          "--user=nobody",
          "--group=nogroup",
          `--pidfile=${dir}/postgrey/pid`,
        ], greyPort),
      );
      peers.push(
        await startPeer(
          POSTFWD,
          [
            "-d",
            `--file=${dir}/rules`,
            "--interface=127.0.0.1",
            `--port=${fwdPort}`,
            "--user=nobody",
            "--group=nogroup",
            `--pidfile=${dir}/postfwd.pid`,
          ],
          fwdPort,
          `${dir}/postfwd.pid`,
        ),
      );
      const mainCf = [
        "myhostname = mx.test.example",
        "mydestination = $myhostname, localhost, example.com",
        "mynetworks = 192.0.2.0/24",
        "local_recipient_maps =",
        "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
        "smtpd_error_sleep_time = 0",
        "smtpd_restriction_classes = deadpolicy",
        `deadpolicy = check_policy_service inet:127.0.0.1:${deadPort}`,
        "smtpd_recipient_restrictions = reject_unauth_destination, " +
        "check_recipient_access inline:{ dead@example.com=deadpolicy }, " +
        `check_policy_service inet:127.0.0.1:${fwdPort}, ` +
        `check_policy_service { inet:127.0.0.1:${greyPort}, timeout=10s }`,
      ].join("\n");
      const pf = await startPostfix({ mainCf, myhostname: "mx.test.example" });
      servers.push(pf);
      const pw = await startInstance({ mainCf });
      servers.push(pw);

      const theirs = await smtpReplies(pf.port, session("s@pf.example"));
      const ours = await smtpReplies(pw.port, session("s@pw.example"));
      await t.step(
        "first attempt: postfwd's REJECT, the default action, postgrey's greylisting",
        () => {
          assertEquals(
            comparable(session("s"), ours),
            comparable(session("s"), theirs),
          );
          assertEquals(
            ours[3],
            "554 5.7.1 <blocked@example.com>: Recipient address rejected: no thanks",
          );
          assertEquals(
            ours[4],
            "451 4.3.5 <dead@example.com>: Recipient address rejected: Server configuration problem",
          );
          assertMatch(
            ours[5],
            /^450 4\.\d\.\d <user@example\.com>: Recipient address rejected: Greylisted/,
          );
        },
      );
      await new Promise((r) => setTimeout(r, (DELAY + 2) * 1000));
      const theirRetry = await smtpReplies(pf.port, retry("s@pf.example"));
      const ourRetry = await smtpReplies(pw.port, retry("s@pw.example"));
      await t.step("the retry after the delay is accepted, its message too", () => {
        assertEquals(comparable(retry("s"), ourRetry), comparable(retry("s"), theirRetry));
        assertEquals(ourRetry[3], "250 2.1.5 Ok");
        assertMatch(ourRetry[5], /^250 2\.0\.0 Ok: queued as /);
      });
      await t.step("the policy server's failure is logged", async () => {
        const problem = new RegExp(
          `warning: problem talking to server inet:127\\.0\\.0\\.1:${deadPort}: `,
        );
        assertMatch(await waitForLog(pw, problem), problem);
      });
    } finally {
      for (const s of servers) await s.stop().catch(() => {});
      for (const p of peers) await p.stop().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
