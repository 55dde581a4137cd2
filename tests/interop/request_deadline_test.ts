/**
 * smtpd_per_request_deadline against a real Postfix 3.7: a client that
 * trickles a command one byte at a time gets the same outcome from both
 * servers (smtpd_timeout = 2s): with the deadline off, each byte resets
 * the timer and the command is answered; with it on, the whole command
 * must arrive within smtpd_timeout and the client gets 421 4.4.2 ... Error:
 * timeout exceeded. Likewise DATA content trickled slower than
 * smtpd_min_data_rate is cut off, and faster content is not.
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assertEquals } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX } from "../helpers/postfix.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Sends `pieces` (each after its delay) and returns the reply codes with
 * the text of a 421, until the server closes or 12 s pass.
 */
async function trickle(port: number, pieces: [number, string][]): Promise<string[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let text = "";
  let closed = false;
  const reader = (async () => {
    const buf = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += dec.decode(buf.subarray(0, n));
      }
    } catch {
      // reset
    }
    closed = true;
  })();
  try {
    for (const [ms, piece] of pieces) {
      await sleep(ms);
      if (closed) break;
      await conn.write(enc.encode(piece)).catch(() => {});
    }
    const end = Date.now() + 12_000;
    while (!closed && Date.now() < end) await sleep(100);
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
    await reader;
  }
  return text.split("\r\n").filter((l) => /^\d{3} /.test(l)).map((l) =>
    l.startsWith("421 ") ? l.replace(/^421 4\.4\.2 \S+ /, "421 4.4.2 HOST ") : l.slice(0, 3)
  );
}

const bytewise = (s: string, ms: number): [number, string][] => [...s].map((c) => [ms, c]);

/** Each session, and the reply codes Postfix must give (the test's premise). */
const SESSIONS: {
  name: string;
  settings: string[];
  pieces: [number, string][];
  expect: string[];
}[] = [
  {
    name: "deadline off: a trickled command is answered",
    settings: ["smtpd_per_request_deadline = no"],
    pieces: [[0, "EHLO c.example\r\n"], ...bytewise("NOOP\r\n", 500), [0, "QUIT\r\n"]],
    expect: ["220", "250", "250", "221"],
  },
  {
    name: "deadline on: a trickled command times out",
    settings: ["smtpd_per_request_deadline = yes"],
    pieces: [[0, "EHLO c.example\r\n"], ...bytewise("NOOP\r\n", 500), [0, "QUIT\r\n"]],
    expect: ["220", "250", "421 4.4.2 HOST Error: timeout exceeded"],
  },
  {
    name: "deadline on: DATA faster than smtpd_min_data_rate is received",
    settings: ["smtpd_per_request_deadline = yes", "smtpd_min_data_rate = 100"],
    expect: ["220", "250", "250", "250", "354", "250", "221"],
    pieces: [
      [0, "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n"],
      ...Array.from({ length: 8 }, (): [number, string] => [500, "x".repeat(78) + "\r\n"]),
      [0, ".\r\nQUIT\r\n"],
    ],
  },
  {
    name: "deadline on: DATA slower than smtpd_min_data_rate is cut off",
    settings: ["smtpd_per_request_deadline = yes", "smtpd_min_data_rate = 10000"],
    expect: ["220", "250", "250", "250", "354", "421 4.4.2 HOST Error: timeout exceeded"],
    pieces: [
      [0, "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n"],
      ...Array.from({ length: 8 }, (): [number, string] => [500, "x".repeat(78) + "\r\n"]),
      [0, ".\r\nQUIT\r\n"],
    ],
  },
];

Deno.test({
  name: "smtpd_per_request_deadline: a trickling client fares as with Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const { startPostfix } = await import("../helpers/postfix.ts");
    const { startInstance } = await import("../helpers/instance.ts");
    for (const s of SESSIONS) {
      const mainCf = [
        "smtpd_timeout = 2s",
        "mydestination = localhost",
        "local_recipient_maps =",
        "smtpd_forbid_unauth_pipelining = no",
        ...s.settings,
      ].join("\n");
      const pf = await startPostfix({ mainCf });
      let theirs: string[];
      try {
        theirs = await trickle(pf.port, s.pieces);
      } finally {
        await pf.stop();
      }
      const pw = await startInstance({ mainCf });
      let ours: string[];
      try {
        ours = await trickle(pw.port, s.pieces);
      } finally {
        await pw.stop();
      }
      await t.step(s.name, () => {
        assertEquals(theirs, s.expect);
        assertEquals(ours, theirs);
      });
    }
  },
});
