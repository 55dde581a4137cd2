/**
 * smtpd_sasl_mechanism_filter differentially: a real Postfix 3.7 and a
 * Postwarden instance, both with AUTH through the same real Dovecot
 * (auth_mechanisms = plain login), get the same main.cf with each filter
 * value, and the AUTH keyword of their EHLO replies must be the same:
 * Postfix's default, a name list, "!name, static:rest", a first match
 * that wins. Then what each does with the mechanism the filter hid:
 * Postfix lets "AUTH PLAIN" through to Dovecot (the filter only changes
 * EHLO), Postwarden refuses it (lib/sasl/mech_filter.ts: a difference on
 * purpose), and both accept the mechanism still shown. A filter that
 * discards every mechanism: Postfix's smtpd dies (fatal) at the
 * connection; Postwarden logs the same text as an error and offers no
 * AUTH.
 *
 * Needs root, Dovecot and Postfix; without them the test is skipped
 * loudly, under CI=true it fails.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { startInstance, waitUntil } from "../helpers/instance.ts";
import { DOVEADM, DOVECOT, startDovecot } from "../helpers/dovecot.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";
import { TlsTestClient } from "../helpers/tls.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

const COMMON = [
  "mynetworks = 127.0.0.1/32",
  "smtpd_sasl_auth_enable = yes",
  "smtpd_sasl_type = dovecot",
  "smtpd_error_sleep_time = 0",
];

/** PLAIN's initial response for alice / secret. */
const PLAIN_ALICE = btoa("\0alice\0secret");

/** The AUTH line of the EHLO reply ("" when none), then the reply to each command. */
async function session(port: number, commands: string[]): Promise<string[]> {
  const c = new TlsTestClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  try {
    await c.reply();
    const ehlo = await c.cmd("EHLO client.example");
    const auth = ehlo.split("\n").map((l) => l.slice(4)).find((l) => /^AUTH /.test(l)) ?? "";
    const out = [auth];
    for (const cmd of commands) out.push((await c.cmd(cmd)).split("\n").at(-1)!);
    await c.cmd("QUIT");
    return out;
  } finally {
    try {
      c.conn.close();
    } catch { /* closed */ }
  }
}

const CASES: { filter: string | null; auth: string }[] = [
  { filter: null, auth: "AUTH PLAIN LOGIN" },
  { filter: "login", auth: "AUTH LOGIN" },
  { filter: "!plain, static:rest", auth: "AUTH LOGIN" },
  { filter: "static:all, !plain", auth: "AUTH PLAIN LOGIN" },
  { filter: "PLAIN, !login", auth: "AUTH PLAIN" },
];

Deno.test({
  name: "sasl mechanism filter interop: the EHLO AUTH keyword as Postfix shows it",
  ...opts,
  fn: async (t) => {
    if (
      !haveRoot("sasl_mech_filter_test") || !havePeer(DOVECOT) || !havePeer(DOVEADM) ||
      !havePeer(POSTFIX)
    ) return;
    const dovecot = await startDovecot({ alice: "secret" });
    try {
      for (const c of CASES) {
        const filter = c.filter === null ? [] : [`smtpd_sasl_mechanism_filter = ${c.filter}`];
        const pf = await startPostfix({
          mainCf: [...COMMON, `smtpd_sasl_path = inet:127.0.0.1:${dovecot.port}`, ...filter]
            .join("\n"),
        });
        let theirs: string[];
        try {
          theirs = await session(pf.port, [`AUTH PLAIN ${PLAIN_ALICE}`]);
        } finally {
          await pf.stop();
        }
        const pw = await startInstance({
          mainCf: [...COMMON, `smtpd_sasl_path = ${dovecot.socket}`, ...filter].join("\n"),
        });
        let ours: string[];
        try {
          ours = await session(pw.port, [`AUTH PLAIN ${PLAIN_ALICE}`]);
        } finally {
          await pw.stop();
        }
        await t.step(`${c.filter ?? "(default)"}: ${c.auth}`, () => {
          assertEquals(ours[0], theirs[0]);
          assertEquals(ours[0], c.auth);
          // Postfix does not check AUTH's mechanism against the filter; Postwarden does.
          assertEquals(theirs[1], "235 2.7.0 Authentication successful");
          assertEquals(
            ours[1],
            c.auth.includes("PLAIN")
              ? "235 2.7.0 Authentication successful"
              : "535 5.7.8 Error: authentication failed: Invalid authentication mechanism",
          );
        });
      }
      await t.step("a filter that discards every mechanism", async () => {
        const filter = "smtpd_sasl_mechanism_filter = !static:rest";
        const pf = await startPostfix({
          mainCf: [...COMMON, `smtpd_sasl_path = inet:127.0.0.1:${dovecot.port}`, filter]
            .join("\n"),
        });
        try {
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: pf.port });
          const b = new Uint8Array(1024);
          // Postfix's smtpd dies before its greeting: the connection just ends.
          const n = await conn.read(b).catch(() => null);
          conn.close();
          assertEquals(
            n === null || !new TextDecoder().decode(b.subarray(0, n)).startsWith("220"),
            true,
          );
          await waitUntil(
            async () => /discards all mechanisms/.test(await pf.log()),
            10_000,
            "log",
          );
          assertMatch(
            await pf.log(),
            /fatal: smtpd_sasl_mechanism_filter discards all mechanisms in 'PLAIN LOGIN'/,
          );
        } finally {
          await pf.stop();
        }
        const pw = await startInstance({
          mainCf: [...COMMON, `smtpd_sasl_path = ${dovecot.socket}`, filter].join("\n"),
        });
        try {
          const ours = await session(pw.port, [`AUTH PLAIN ${PLAIN_ALICE}`]);
          assertEquals(ours, ["", "503 5.5.1 Error: authentication not enabled"]);
          await waitUntil(
            async () => /discards all mechanisms/.test(await pw.log()),
            10_000,
            "log",
          );
          assert(
            /error: smtpd_sasl_mechanism_filter discards all mechanisms in 'PLAIN LOGIN'/.test(
              await pw.log(),
            ),
          );
        } finally {
          await pw.stop();
        }
      });
    } finally {
      await dovecot.stop();
    }
  },
});
