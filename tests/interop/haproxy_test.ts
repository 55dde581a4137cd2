/**
 * The HAProxy PROXY protocol over raw sockets, Postwarden against a real
 * Postfix 3.7 with the same main.cf (smtpd_upstream_proxy_protocol =
 * haproxy): v1 and v2 headers, a v2 LOCAL health check, a bad header, no
 * header at all, a header that never comes (smtpd_upstream_proxy_timeout).
 * The replies and the haproxy warning, connect and disconnect log lines
 * must be the same; a good header's client address must be the session's.
 * Then, Postwarden only: a header split over several writes (Postfix reads
 * it with one peek) and SMTP commands in the same write as the header.
 *
 * Without Postfix or root the differential part is skipped loudly (under
 * CI=true it fails instead); the Postwarden-only part always runs.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { onBoth } from "../helpers/differential.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { startInstance } from "../helpers/instance.ts";
import { type HasMaillog, waitForLog } from "../helpers/maillog.ts";
import { SmtpClient, SmtpConnectionClosed } from "../helpers/smtp_client.ts";

const MAIN_CF = [
  "myhostname = mx.test.example",
  "smtpd_banner = $myhostname ESMTP",
  "inet_protocols = all",
  "smtpd_upstream_proxy_protocol = haproxy",
  "smtpd_upstream_proxy_timeout = 1s",
  "smtpd_client_restrictions = check_client_access inline:{ {192.0.2.66=REJECT} }",
  "smtpd_delay_reject = no",
];

const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const enc = new TextEncoder();

function v2(cmd: number, fam: number, body: number[]): Uint8Array {
  return new Uint8Array([...SIG, 0x20 | cmd, fam, body.length >> 8, body.length & 0xff, ...body]);
}

/** What the client does: send bytes, or wait for a reply (or the end) and record it. */
type Step = Uint8Array | string | "<";

interface Case {
  name: string;
  steps: Step[];
}

const CASES: Case[] = [
  {
    name: "v1 TCP4",
    steps: ["PROXY TCP4 192.0.2.7 127.0.0.1 4567 25\r\n", "<", "HELO x\r\n", "<", "QUIT\r\n", "<"],
  },
  {
    name: "v1 TCP6",
    steps: ["PROXY TCP6 2001:db8::7 ::1 4567 25\r\n", "<", "QUIT\r\n", "<"],
  },
  {
    name: "v1 client refused by its proxied address",
    steps: ["PROXY TCP4 192.0.2.66 127.0.0.1 4567 25\r\n", "<", "QUIT\r\n", "<"],
  },
  { name: "v1 missing port", steps: ["PROXY TCP4 192.0.2.7 127.0.0.1 4567\r\n", "<"] },
  { name: "v1 UNKNOWN", steps: ["PROXY UNKNOWN\r\n", "<"] },
  { name: "no header", steps: ["EHLO x\r\n", "<"] },
  { name: "header never sent", steps: ["<"] },
  {
    name: "v2 TCP4",
    steps: [v2(1, 0x11, [192, 0, 2, 10, 127, 0, 0, 1, 0x1f, 0x90, 0, 25]), "<", "QUIT\r\n", "<"],
  },
  { name: "v2 LOCAL", steps: [v2(0, 0, []), "<", "QUIT\r\n", "<"] },
  { name: "v2 short address", steps: [v2(1, 0x11, [192, 0, 2, 1]), "<"] },
];

/** Runs one case; the replies as text ("(eof)" when the server closed). */
async function runCase(port: number, c: Case): Promise<string[]> {
  const conn = await SmtpClient.connect(port);
  const out: string[] = [];
  try {
    for (const s of c.steps) {
      if (s !== "<") {
        await conn.send(s).catch(() => {});
        continue;
      }
      try {
        out.push((await conn.reply()).join("\r\n"));
      } catch (e) {
        if (!(e instanceof SmtpConnectionClosed)) throw e;
        out.push(conn.takeUnread().trimEnd() || "(eof)");
      }
    }
  } finally {
    conn.close();
  }
  return out;
}

/** haproxy warnings, connect and disconnect lines, without time, host and pid. */
function logged(log: string): string[] {
  return log.split("\n").flatMap((l) => {
    const m = /smtpd\[\d+\]: ((?:warning: haproxy|connect from|disconnect from|NOQUEUE).*)$/.exec(
      l,
    );
    return m ? [m[1]] : [];
  });
}

async function runAll(
  inst: HasMaillog & { port: number },
): Promise<{ replies: string[][]; log: string[][] }> {
  const replies: string[][] = [];
  const log: string[][] = [];
  // The instance helpers' readiness probe: one session before ours.
  let seen = logged(await waitForLog(inst, "disconnect from", 10_000)).length;
  for (const c of CASES) {
    replies.push(await runCase(inst.port, c));
    const all = logged(
      await waitForLog(
        inst,
        (l) => logged(l).slice(seen).some((x) => x.startsWith("disconnect from")),
        10_000,
      ),
    );
    log.push(all.slice(seen));
    seen = all.length;
  }
  return { replies, log };
}

Deno.test({
  name: "PROXY protocol: the same replies and log lines as Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const mainCf = MAIN_CF.join("\n");
    const { theirs, ours } = await onBoth(mainCf, (server) => runAll(server));
    for (const [i, c] of CASES.entries()) {
      await t.step(c.name, () => {
        assertEquals(ours.replies[i], theirs.replies[i]);
        assertEquals(ours.log[i], theirs.log[i]);
      });
    }
  },
});

Deno.test({
  name: "PROXY protocol: split headers and pipelined commands (Postwarden)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const pw = await startInstance({ mainCf: MAIN_CF.join("\n") });
    try {
      const split = await runCase(pw.port, {
        name: "split",
        steps: ["PROXY TCP4 192.0.2.9 ", "127.0.0.1 45", "67 25\r", "\n", "<", "QUIT\r\n", "<"],
      });
      assertMatch(split[0], /^220 /);
      const pipelined = await runCase(pw.port, {
        name: "pipelined",
        steps: [
          new Uint8Array([
            ...v2(1, 0x11, [192, 0, 2, 11, 127, 0, 0, 1, 0x1f, 0x90, 0, 25]),
            ...enc.encode("HELO x\r\n"),
          ]),
          "<",
          "<",
          "QUIT\r\n",
          "<",
        ],
      });
      assertMatch(pipelined[0], /^220 /);
      assertEquals(pipelined[1], "250 mx.test.example");
      const log = await waitForLog(pw, "disconnect from unknown[192.0.2.11]", 10_000);
      assert(log.includes("connect from unknown[192.0.2.9]"), log);
      assert(log.includes("disconnect from unknown[192.0.2.11] helo=1 quit=1 commands=2"), log);
    } finally {
      await pw.stop();
    }
  },
});
