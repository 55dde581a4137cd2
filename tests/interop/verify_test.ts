/**
 * sendmail -bv end to end, beside a real Postfix 3.7 given the same
 * aliases, transports and recipients: both mail the sender a "Mail
 * Delivery Status Report" that Python's email library reads as a
 * multipart/report, and the per-recipient results (Final-Recipient,
 * Action, Status) and the text lines ("<root@...> (expanded from
 * <alias1>): delivery via local: delivers to mailbox") must be the same.
 * Nothing may be delivered: the sink sees RCPT but no DATA for the probe,
 * no mailbox is made, the aliased file is not written and the aliased
 * command does not run. local runs as root (unprivileged = n), as
 * Postfix's does.
 * Needs python3 and Postfix (peers: skip locally when missing, fail under
 * CI=true) and root (Postfix's master).
 */
import { exists } from "../helpers/fs.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { parseDsn, PYTHON } from "../helpers/dsn_python.ts";
import { freePort, startInstance, waitUntil } from "../helpers/instance.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";
import { type SinkMessage, TestSink } from "../../lib/testrun/sink.ts";

const HOST = "mx.test.example";
const RECIPIENTS = [
  "root",
  "alias1",
  "cmd",
  "list",
  "nosuch",
  "user@remote.example",
  "y@err.example",
  "fwd",
];

/** The main.cf lines both systems get. */
function tables(work: string, sinkPort: number): string {
  return [
    `alias_maps = inline:{ {alias1 = root, ${work}/file}, {cmd = "|/usr/bin/touch ${work}/ran"}, ` +
    `{fwd = someone@remote.example}, {list = :include:${work}/list} }`,
    // The smtp client's sandbox allows port 25 or the relayhost's.
    `relayhost = [127.0.0.1]:${sinkPort}`,
    "transport_maps = inline:{ {err.example = error:5.1.1 go away} }",
    "mydestination = $myhostname, localhost",
    `mail_spool_directory = ${work}/spool`,
    // Deno has no fcntl locks; both take flock and dot-lock files.
    "mailbox_delivery_lock = flock, dotlock",
    "local_recipient_maps =",
  ].join("\n");
}

/** What a report says, in an order that does not depend on delivery timing. */
async function summary(m: SinkMessage) {
  const p = await parseDsn(m.data);
  const text = m.data.split("\r\n--")[1] ?? "";
  // Paragraphs "<addr>...: reason", unfolded. Postfix's "(expanded from
  // <alias1>)" names the recipient as sendmail was given it; Postwarden's
  // original recipient is the qualified address (one that only got
  // qualified is not "expanded" at all): compared qualified.
  const qualified = (a: string) => a.includes("@") ? a : `${a}@${HOST}`;
  const lines = text.split(/\r\n\r\n/).filter((x) => x.startsWith("<"))
    .map((x) =>
      x.replace(/\r\n\s+/g, " ").trimEnd()
        .replace(/^<([^>]*)> \(expanded from <([^>]*)>\)/, (_, a, o) =>
          qualified(o) === a ? `<${a}>` : `<${a}> (expanded from <${qualified(o)}>)`)
    ).sort();
  return {
    type: [p.type, p.reportType, p.subject],
    parts: p.parts,
    recipients: p.recipients.map((r) => [r["Final-Recipient"], r["Action"], r["Status"]])
      .map((r) => r.join(" | ")).sort(),
    lines,
  };
}

Deno.test({
  name: "sendmail -bv: the same report as Postfix's, and nothing delivered",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(PYTHON) || !havePeer(POSTFIX) || !haveRoot("a real Postfix")) return;
    const sinkPort = freePort();
    const sink = new TestSink(sinkPort);
    sink.start();
    const work = await Deno.makeTempDir({ prefix: "verify-" });
    await Deno.chmod(work, 0o777);
    await Deno.writeTextFile(`${work}/list`, "root\nnosuch\n", { mode: 0o644 });
    const reports = () => sink.messages.filter((m) => m.to.includes("rep@report.example"));
    const args = ["-f", "rep@report.example", "-bv", ...RECIPIENTS];
    try {
      let ours: Awaited<ReturnType<typeof summary>>;
      await t.step("Postwarden", async () => {
        // local as root (master.cf unprivileged = n), as Postfix ships it: users
        // without an account are unknown, commands and files are allowed.
        const master = (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url)))
          .replace(/^local(\s+unix\s+)-(\s+)-(\s+)/m, "local$1-$2n$3");
        assert(/^local\s+unix\s+-\s+n\s+/m.test(master), "master.cf local line");
        const inst = await startInstance({ mainCf: tables(work, sinkPort), masterCf: master });
        try {
          const r = await inst.command("sendmail.ts", args, "not read\n");
          assertEquals([r.code, r.stdout, r.stderr], [
            0,
            "Mail Delivery Status Report will be mailed to <rep@report.example>.\n",
            "",
          ]);
          await waitUntil(() => reports().length === 1, 30_000, "the report at the sink")
            .catch(async (e) => {
              throw new Error(`${(e as Error).message}\n${await inst.log()}`);
            });
          // The report reaches the sink before qmgr logs the probe's removal.
          await waitUntil(async () => /removed/.test(await inst.log()), 10_000, "the probe removed")
            .catch(async (e) => {
              throw new Error(`${(e as Error).message}\n${await inst.log()}`);
            });
          const log = await inst.log();
          assert(/status=deliverable \(delivers to mailbox\)/.test(log), log);
          ours = await summary(reports()[0]);
        } finally {
          await inst.stop();
        }
        assertEquals(sink.messages.length, 1, "only the report: no probe was delivered");
        for (const f of ["file", "ran"]) {
          assert(!(await exists(`${work}/${f}`)), `${f}: nothing written or run`);
        }
        // postwarden start makes the spool directory; no mailbox may be in it.
        const spool = await Array.fromAsync(Deno.readDir(`${work}/spool`)).catch(() => []);
        assertEquals(spool.map((e) => e.name), [], "no mailbox made");
      });

      await t.step("Postfix, and the two reports compared", async () => {
        sink.messages.length = 0;
        const pf = await startPostfix({
          myhostname: HOST,
          mainCf: tables(work, sinkPort),
        });
        let theirs;
        try {
          const r = await pf.sendmail(args, "");
          assertEquals(r.code, 0, r.output);
          await waitUntil(() => reports().length === 1, 30_000, "Postfix's report at the sink");
          theirs = await summary(reports()[0]);
        } finally {
          await pf.stop();
        }
        assertEquals(ours!, theirs);
      });
    } finally {
      sink.stop();
      await Deno.remove(work, { recursive: true });
    }
  },
});
