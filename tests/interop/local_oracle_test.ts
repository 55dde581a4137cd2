/**
 * local(8) delivery against the oracle: the same aliases (commands with
 * sendmail exit codes and output, /dev/null, a mailbox, an unknown user)
 * in a real Postfix and in Postwarden, each with local running as root
 * (Postwarden: master.cf unprivileged = n) and an mbox spool, must log
 * the same `to=<...>, dsn=..., status=... (text)` lines, and write the
 * same mbox (From line, Return-Path, X-Original-To, Delivered-To, >From).
 * Needs root and Postfix (skips loudly otherwise, fails under CI=true).
 */
import { assertEquals } from "../helpers/assert.ts";
import { freePort, smtpSend, startInstance } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";
import { TestSink } from "../../lib/testrun/sink.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

const ALIASES = "inline:{ " + [
  '{ t75 = "|echo busy; exit 75" }',
  '{ t3 = "|exit 3" }',
  '{ t67 = "|echo no such >&2; exit 67" }',
  '{ tok = "|cat > /dev/null" }',
  "{ tnull = /dev/null }",
].join(", ") + " }";
const RCPTS = ["t75", "t3", "t67", "tok", "tnull", "nobody", "ghost"];

/** local(8)'s status lines with host, queue id and timings taken out, sorted. */
function localLines(log: string, host: string): string[] {
  const out: string[] = [];
  for (const line of log.split("\n")) {
    const m = /\/local\[\d+\]: [0-9A-Z]+: (to=<.*?>, (?:orig_to=<.*?>, )?)relay=local, .*(dsn=.*)$/
      .exec(line);
    if (m) out.push((m[1] + m[2]).replaceAll(`@${host}`, "@HOST"));
  }
  return out.sort();
}

const allLogged = (host: string) => (log: string) => {
  const lines = localLines(log, host);
  return RCPTS.every((r) => lines.some((l) => l.includes(`<${r}@HOST>`)));
};

/** The mbox with the date of its From line and host names taken out. */
async function mbox(path: string, host: string): Promise<string> {
  const text = await Deno.readTextFile(path);
  return text.replace(/^(From \S+ {2}).{24}$/m, "$1DATE").replaceAll(host, "HOST")
    .replace(/^Received: [\s\S]*?(?=^\S)/gm, "")
    .replace(/^(Message-Id|Date|From): .*\n/gim, "");
}

Deno.test({
  name: "interop: local(8) commands, files and mbox match Postfix's",
  ...opts,
  fn: async () => {
    if (!havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const common = `alias_maps = ${ALIASES}\nlocal_recipient_maps =\ndefault_privs = nobody\n`;
    const send = async (port: number, host: string) => {
      const r = await smtpSend(port, {
        from: "sender@client.test",
        to: RCPTS.map((r) => `${r}@${host}`),
        body: "Subject: local oracle\r\n\r\nFrom the start\r\nbody\r\n",
      });
      assertEquals(r.code, 250, r.replies.join(" / "));
    };

    const pfSpool = await Deno.makeTempDir({ prefix: "pf-spool-" });
    await Deno.chmod(pfSpool, 0o1777);
    const pfSink = new TestSink(freePort());
    pfSink.start();
    const pf = await startPostfix({
      mainCf: `${common}mydestination = $myhostname\nmail_spool_directory = ${pfSpool}\n` +
        `relayhost = [127.0.0.1]:${pfSink.port}`,
    });
    let pfLines: string[];
    let pfBox: string;
    try {
      await send(pf.port, "postfix.test.example");
      pfLines = localLines(
        await waitForLog(pf, allLogged("postfix.test.example"), 30_000),
        "postfix.test.example",
      );
      pfBox = await mbox(`${pfSpool}/nobody`, "postfix.test.example");
    } finally {
      await pf.stop();
      pfSink.stop();
      await Deno.remove(pfSpool, { recursive: true }).catch(() => {});
    }

    const pwSpool = await Deno.makeTempDir({ prefix: "pw-spool-" });
    await Deno.chmod(pwSpool, 0o1777);
    const pwSink = new TestSink(freePort());
    pwSink.start();
    const master = (await Deno.readTextFile(`${ROOT}/conf/master.cf`)).replace(
      /^local(\s+unix\s+)-(\s+)-(\s+)/m,
      "local$1-$2n$3",
    );
    const inst = await startInstance({
      masterCf: master,
      mainCf: `${common}mail_spool_directory = ${pwSpool}\n` +
        "mailbox_delivery_lock = flock, dotlock\n" +
        `relayhost = [127.0.0.1]:${pwSink.port}`,
    });
    let pwLines: string[];
    let pwBox: string;
    try {
      await send(inst.port, "mx.test.example");
      pwLines = localLines(
        await waitForLog(inst, allLogged("mx.test.example"), 60_000),
        "mx.test.example",
      );
      pwBox = await mbox(`${pwSpool}/nobody`, "mx.test.example");
    } finally {
      await inst.stop();
      pwSink.stop();
      await Deno.remove(pwSpool, { recursive: true }).catch(() => {});
    }
    assertEquals(pwLines, pfLines);
    assertEquals(pwBox, pfBox);
  },
});
