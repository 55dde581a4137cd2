/**
 * Differential test of whole SMTP sessions: each scripted session in
 * smtp_sessions.ts is played against a real Postfix 3.7 and against
 * Postwarden, both started with the same main.cf (COMMON plus the
 * session's lines; sessions with the same lines share one pair of
 * servers), and every reply must be the same: code, enhanced status code
 * and text.
 *
 * What is not compared, because it names the server or the message: the
 * greeting's text (only its code), the queue id in "250 2.0.0 Ok: queued
 * as ID", and the EHLO keywords of features Postwarden does not have yet
 * (PENDING_KEYWORDS, printed). Sessions marked `pending` are not played;
 * the test prints how many there are and what each waits for.
 * `SMTP_SESSIONS=<regexp>` plays only the sessions whose name matches.
 *
 * Without Postfix or root the test is skipped loudly; under CI=true it
 * fails instead.
 *
 * @module
 */
import { assertEquals } from "../helpers/assert.ts";
import { onBoth } from "../helpers/differential.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX } from "../helpers/postfix.ts";
import { playScript, type StepResult } from "../helpers/smtp_script.ts";
import { COMMON, PENDING_KEYWORDS, SESSIONS, type SmtpSession } from "./smtp_sessions.ts";

/**
 * The replies as "sent -> reply" lines with what names the server or
 * message masked: the greeting's text unless `greeting` (main.cf sets
 * smtpd_banner), queue ids, EHLO keywords still pending.
 */
export function comparable(results: StepResult[], greeting = false): string[] {
  const pending = Object.keys(PENDING_KEYWORDS);
  // No pending keyword: nothing is masked (an empty alternation would match every 250 line).
  const pendingKw = pending.length ? new RegExp(`^250[- ](${pending.join("|")})\\b`, "i") : /(?!)/;
  const out: string[] = [];
  for (const [i, r] of results.entries()) {
    for (const lines of r.replies) {
      let shown: string;
      if (i === 0 && !greeting) shown = lines[0].slice(0, 3);
      else {
        shown = lines
          .filter((l) => !pendingKw.test(l))
          .map((l) => l.replace(/^(\d{3})-/, "$1 ").replace(/queued as \w+/, "queued as ID"))
          .join(" / ");
      }
      out.push(`${i === 0 ? "greeting" : r.sent.slice(0, 120)} -> ${shown}`);
    }
  }
  return out;
}

/** Configurations played at the same time. */
const PARALLEL = 3;

/** Sessions grouped by their main.cf lines, in table order. */
function groups(sessions: SmtpSession[]): Map<string, SmtpSession[]> {
  const out = new Map<string, SmtpSession[]>();
  for (const s of sessions) {
    const key = [...COMMON, ...(s.mainCf ?? [])].join("\n");
    out.set(key, [...(out.get(key) ?? []), s]);
  }
  return out;
}

/** Plays each session against a server on 127.0.0.1:port. */
async function playAll(port: number, sessions: SmtpSession[]): Promise<StepResult[][]> {
  const out = [];
  for (const s of sessions) {
    out.push(await playScript("127.0.0.1", port, s.steps, { localAddress: s.from }));
  }
  return out;
}

Deno.test({
  name: "scripted SMTP sessions: the same replies as Postfix",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const pending = SESSIONS.filter((s) => s.pending);
    // SMTP_SESSIONS=regexp plays only the sessions whose name matches (for development).
    const only = new RegExp(Deno.env.get("SMTP_SESSIONS") ?? "");
    const active = SESSIONS.filter((s) => !s.pending && only.test(s.name));
    console.log(
      `${active.length} sessions played, ${pending.length} pending:\n` +
        pending.map((s) => `  PENDING ${s.name} (waits for ${s.pending})`).join("\n") +
        `\n  EHLO keywords not compared yet: ${Object.values(PENDING_KEYWORDS).join(", ")}`,
    );
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    /** Both servers of one configuration, side by side: their replies to each session. */
    const play = async (mainCf: string, sessions: SmtpSession[]) => {
      const { theirs, ours } = await onBoth(mainCf, (server) => playAll(server.port, sessions), {
        concurrent: true,
      });
      return { sessions, theirs, ours };
    };
    // A few configurations at a time: starting and stopping servers is most of the time.
    const todo = [...groups(active)];
    const done: Awaited<ReturnType<typeof play>>[] = [];
    await Promise.all(Array.from({ length: PARALLEL }, async () => {
      for (let g = todo.shift(); g; g = todo.shift()) done.push(await play(...g));
    }));
    const order = new Map(active.map((s, i) => [s, i]));
    const results = done.flatMap((r) =>
      r.sessions.map((s, i) => ({ s, ours: r.ours[i], theirs: r.theirs[i] }))
    ).sort((a, b) => order.get(a.s)! - order.get(b.s)!);
    for (const { s, ours, theirs } of results) {
      await t.step(s.name, () => {
        const banner = (s.mainCf ?? []).some((l) => l.startsWith("smtpd_banner"));
        assertEquals(comparable(ours, banner), comparable(theirs, banner));
      });
    }
  },
});
