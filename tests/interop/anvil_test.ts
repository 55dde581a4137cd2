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
import { POSTFIX } from "../helpers/postfix.ts";

const MAIN_CF = [
  "myhostname = mx.test.example",
  "mydestination = $myhostname, localhost",
  "mynetworks = 192.0.2.0/24",
  "smtpd_client_connection_count_limit = 2",
  "smtpd_client_message_rate_limit = 1",
  "smtpd_error_sleep_time = 0",
].join("\n");

/** Reads one reply's last line. */
async function reply(conn: Deno.Conn): Promise<string> {
  const dec = new TextDecoder();
  let buf = "";
  const chunk = new Uint8Array(4096);
  for (;;) {
    const m = /(?:^|\r\n)(\d{3}) ([^\r\n]*)\r\n$/.exec(buf);
    if (m) return `${m[1]} ${m[2]}`;
    // A reply that never comes fails the comparison instead of hanging the suite.
    const n = await Promise.race([
      conn.read(chunk),
      new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 10_000)),
    ]);
    if (n === "timeout") return `no reply after ${JSON.stringify(buf)}`;
    if (n === null) return `closed after ${JSON.stringify(buf)}`;
    buf += dec.decode(chunk.subarray(0, n));
  }
}

async function send(conn: Deno.Conn, line: string): Promise<string> {
  await conn.write(new TextEncoder().encode(`${line}\r\n`));
  return await reply(conn);
}

/** The dialog: two held connections, a third, two MAILs on the first. */
async function dialog(port: number): Promise<string[]> {
  const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
  const a = await connect();
  const b = await connect();
  try {
    const out = [await reply(a), await reply(b)];
    const c = await connect();
    out.push(await reply(c));
    out.push(await reply(c)); // the server closes after its 421
    c.close();
    out.push(await send(a, "HELO client.example"));
    out.push(await send(a, "MAIL FROM:<s@example.org>"));
    out.push(await send(a, "RSET"));
    out.push(await send(a, "MAIL FROM:<s@example.org>"));
    out.push(await send(a, "QUIT"));
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

async function waitForLog(read: () => Promise<string>, n: number, port: number) {
  const end = Date.now() + 10_000;
  for (;;) {
    const log = await read();
    if (warnings(log, port).length >= n || Date.now() > end) return log;
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test({
  name: "client limits: the same replies and warnings as Postfix's anvil",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const { startPostfix } = await import("../helpers/postfix.ts");
    const { startInstance, waitUntil } = await import("../helpers/instance.ts");
    const pf = await startPostfix({ mainCf: MAIN_CF, myhostname: "mx.test.example" });
    let theirs: string[];
    let theirWarnings: string[];
    try {
      // Postfix's smtpd reports the readiness probe's end to anvil a moment later too.
      await new Promise((r) => setTimeout(r, 1000));
      theirs = await dialog(pf.port);
      theirWarnings = warnings(await waitForLog(() => pf.log(), 2, pf.port), pf.port);
    } finally {
      await pf.stop();
    }
    const pw = await startInstance({ mainCf: MAIN_CF });
    let ours: string[];
    let ourWarnings: string[];
    try {
      // The start helper's readiness probe is a connection too: let anvil see it end
      // (two smtpd processes: the next connection can reach the other one first).
      await waitUntil(async () => /disconnect from/.test(await pw.log()), 10_000, "probe");
      await new Promise((r) => setTimeout(r, 1000));
      ours = await dialog(pw.port);
      ourWarnings = warnings(await waitForLog(() => pw.log(), 2, pw.port), pw.port);
    } finally {
      await pw.stop();
    }
    await t.step("replies", () => {
      assertEquals(ours, theirs);
      assertEquals(ours[2], "421 4.7.0 mx.test.example Error: too many connections from 127.0.0.1");
    });
    await t.step("warnings", () => {
      // Sorted: two smtpd processes (the 421 and the MAIL are served by different ones)
      // can log in either order.
      assertEquals(ourWarnings.toSorted(), theirWarnings.toSorted());
      assertEquals(ourWarnings.length, 2);
    });
  },
});
