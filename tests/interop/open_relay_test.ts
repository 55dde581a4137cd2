/**
 * Open-relay test: from a client outside mynetworks (mynetworks =
 * 127.0.0.1/32, the client bound to 127.0.0.2), every classic relay-test
 * address form must be refused by Postwarden, with the same reply code,
 * enhanced code and text as a real Postfix 3.7 with the same main.cf.
 *
 * The forms are those of the old relay-test services (mail-abuse.org,
 * ORDB, abuse.net's relay checker) and RFC 2505 section 2.3: the percent
 * hack, bang paths (plain, quoted, mixed with "%" and "@"), source routes,
 * quoted local parts holding "@" or "!" or "%", an extra "@", remote IP
 * literals and our own IP literal as the "ours" part, with our domain
 * written as mydestination, $myhostname, an address literal, a relay
 * domain, upper case or with a trailing dot. Each is tried with three
 * senders: a remote one, the null sender and one of ours (spoofed).
 * Postfix must refuse every form as well, which keeps the list honest: a
 * form Postfix accepts is local delivery, not relaying.
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { onBoth } from "../helpers/differential.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { playScript, type Step, type StepResult } from "../helpers/smtp_script.ts";
import { COMMON, OUTSIDE } from "./smtp_sessions.ts";

/** The remote victim: a domain and an address literal that are not ours. */
const REMOTE = "remote.example";
const REMOTE_IP = "192.0.2.7";

/** Ways to write a destination of ours: mydestination, $myhostname, address literal, relay domain. */
const OURS = [
  "localhost",
  "mx.test.example",
  "[127.0.0.1]",
  "relay.example",
  "MX.TEST.EXAMPLE",
  "localhost.",
];

/** Relay-test recipients that route to REMOTE through a destination of ours. */
function relayForms(ours: string): string[] {
  const u = "relaytest";
  return [
    `${u}%${REMOTE}@${ours}`,
    `${u}%${REMOTE}%${ours}@${ours}`,
    `"${u}%${REMOTE}"@${ours}`,
    `${u}%${REMOTE}.@${ours}`,
    `${u}%[${REMOTE_IP}]@${ours}`,
    `${REMOTE}!${u}@${ours}`,
    `"${REMOTE}!${u}"@${ours}`,
    `${REMOTE}!${u}%${ours}@${ours}`,
    `${ours}!${REMOTE}!${u}@${ours}`,
    `${u}@${REMOTE}@${ours}`,
    `"${u}@${REMOTE}"@${ours}`,
    `${u}\\@${REMOTE}@${ours}`,
    `@${ours}:${u}@${REMOTE}`,
    `@${ours},@${REMOTE}:${u}@${REMOTE}`,
    `@${ours},${REMOTE}:${u}@${REMOTE}`,
    `@${ours}:${u}%${REMOTE}@${ours}`,
    `${u}@[${REMOTE_IP}]@${ours}`,
  ];
}

/** Relay-test recipients without a destination of ours. */
const BARE_FORMS = [
  `relaytest@${REMOTE}`,
  `relaytest@${REMOTE.toUpperCase()}`,
  `relaytest@${REMOTE}.`,
  `relaytest@[${REMOTE_IP}]`,
  `"relaytest"@${REMOTE}`,
  `relaytest%${REMOTE}`,
  `${REMOTE}!relaytest`,
  `"${REMOTE}!relaytest"`,
  `relaytest@${REMOTE}@[${REMOTE_IP}]`,
  `@${REMOTE}:relaytest@${REMOTE}`,
  `relaytest@sub.mx.test.example`,
  `relaytest@localhost.${REMOTE}`,
];

/** Every form, each once. */
export const RELAY_FORMS: string[] = [...new Set([...BARE_FORMS, ...OURS.flatMap(relayForms)])];

const SENDERS = [`<spamtest@${REMOTE}>`, "<>", "<spamtest@localhost>"];

/** main.cf of both servers: refused recipients must not end the session. */
const MAIN_CF = [...COMMON, "smtpd_hard_error_limit = 1000", "smtpd_soft_error_limit = 1000"];

/** One session per sender: every form as a RCPT, then DATA, which must find no recipient. */
function sessions(): Step[][] {
  return SENDERS.map((from) => [
    "EHLO relaytest.example",
    `MAIL FROM:${from}`,
    ...RELAY_FORMS.map((r) => `RCPT TO:<${r}>`),
    "DATA",
    "QUIT",
  ]);
}

/** "command -> reply" for each RCPT and the DATA after them. */
function rcptReplies(results: StepResult[]): string[] {
  return results.filter((r) => /^(RCPT|DATA)/.test(r.sent)).map((r) =>
    `${r.sent} -> ${r.replies.map((l) => l.join(" / ")).join(" | ")}`
  );
}

async function playAll(port: number): Promise<string[][]> {
  const out = [];
  for (const steps of sessions()) {
    out.push(rcptReplies(await playScript("127.0.0.1", port, steps, { localAddress: OUTSIDE })));
  }
  return out;
}

Deno.test({
  name: "open relay: every classic relay address form is refused, as Postfix refuses it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const mainCf = MAIN_CF.join("\n");
    const { theirs, ours } = await onBoth(mainCf, (server) => playAll(server.port));
    console.log(`${RELAY_FORMS.length} relay forms x ${SENDERS.length} senders`);
    for (const [i, from] of SENDERS.entries()) {
      await t.step(`MAIL FROM:${from}: Postwarden refuses every form`, () => {
        const accepted = ours[i].filter((l) => / -> [23]\d\d /.test(l));
        assertEquals(accepted, [], "recipients accepted from outside mynetworks");
        assert(ours[i].length === RELAY_FORMS.length + 1, `replies: ${ours[i].length}`);
      });
      await t.step(`MAIL FROM:${from}: Postfix refuses every form too`, () => {
        assertEquals(theirs[i].filter((l) => / -> [23]\d\d /.test(l)), []);
      });
      await t.step(`MAIL FROM:${from}: the same replies as Postfix`, () => {
        const differ = ours[i].flatMap((l, j) =>
          l === theirs[i][j] ? [] : [`Postwarden: ${l}\nPostfix:    ${theirs[i][j]}`]
        );
        assertEquals(differ, [], `${differ.length} replies differ:\n${differ.join("\n")}`);
        assertEquals(ours[i].length, theirs[i].length);
      });
    }
  },
});
