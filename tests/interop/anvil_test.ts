/**
 * Client limits differentially: a real Postfix 3.7 (with its anvil) and a
 * Postwarden instance get the same main.cf (smtpd_client_connection_count_limit
 * = 2, smtpd_client_message_rate_limit = 1, the client outside mynetworks),
 * hold two connections, open a third, then send two messages' MAIL: the
 * replies must be the same, and so must the warnings (the master.cf service
 * name aside, which both call `127.0.0.1:<port>`).
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assertEquals } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { onBoth } from "../helpers/differential.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { SmtpClient } from "../helpers/smtp_client.ts";

const MAIN_CF = [
  "myhostname = mx.test.example",
  "mydestination = $myhostname, localhost",
  "mynetworks = 192.0.2.0/24",
  "smtpd_client_connection_count_limit = 2",
  "smtpd_client_message_rate_limit = 1",
  "smtpd_error_sleep_time = 0",
].join("\n");

/** The dialog: two held connections, a third, two MAILs on the first. */
async function dialog(port: number): Promise<string[]> {
  const a = await SmtpClient.connect(port);
  const b = await SmtpClient.connect(port);
  try {
    const out = [await a.replyLine(), await b.replyLine()];
    const c = await SmtpClient.connect(port);
    out.push(await c.replyLine());
    out.push(await c.waitClosed() ? "(closed)" : "(still open)"); // the server closes after its 421
    c.close();
    for (
      const cmd of [
        "HELO client.example",
        "MAIL FROM:<s@example.org>",
        "RSET",
        "MAIL FROM:<s@example.org>",
        "QUIT",
      ]
    ) {
      out.push((await a.command(cmd)).at(-1)!);
    }
    // Both servers name themselves in the greeting and HELO reply.
    return out.map((l) => /^2[25]0 mx\.test\.example/.test(l) ? l.slice(0, 3) : l);
  } finally {
    a.close();
    b.close();
  }
}

/**
 * The limit warnings, each once, with the service port replaced. (Once:
 * a Postfix smtpd still serving the start helper's readiness probe can
 * report that connection to anvil late and log the same warning twice.)
 */
function warnings(log: string, port: number): string[] {
  return [
    ...new Set(
      log.split("\n").flatMap((l) => {
        const m = /warning: ((?:Connection concurrency|Message delivery request) .*)$/.exec(l);
        return m ? [m[1].replace(`127.0.0.1:${port}`, "127.0.0.1:PORT")] : [];
      }),
    ),
  ];
}

Deno.test({
  name: "client limits: the same replies and warnings as Postfix's anvil",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const {
      theirs: [theirs, theirWarnings],
      ours: [ours, ourWarnings],
    } = await onBoth(MAIN_CF, async (server) => {
      // The start helper's readiness probe is a connection too: let anvil see it end
      // (each smtpd reports a connection's end to anvil a moment after it logs it, and
      // with several smtpd processes (maxproc) the next connection can reach another first).
      await waitForLog(server, "disconnect from", 10_000);
      await new Promise((r) => setTimeout(r, 1000));
      const replies = await dialog(server.port);
      const log = await waitForLog(server, (l) => warnings(l, server.port).length >= 2, 10_000);
      return [replies, warnings(log, server.port)] as const;
    });
    await t.step("replies", () => {
      assertEquals(ours, theirs);
      assertEquals(ours[2], "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.1");
    });
    await t.step("warnings", () => {
      // Sorted: with several smtpd processes (maxproc) the 421 and the MAIL may be served
      // by different ones and logged in either order.
      assertEquals(ourWarnings.toSorted(), theirWarnings.toSorted());
      assertEquals(ourWarnings.length, 2);
    });
  },
});
