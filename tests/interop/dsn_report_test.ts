/**
 * Delivery status notifications made by a running instance, read by a
 * consumer that did not write them: Python's email library (the parser
 * mail clients and list software in Python use) must see each one as a
 * multipart/report of report-type delivery-status whose
 * message/delivery-status part has the per-message fields and, per
 * recipient, Final-Recipient, Original-Recipient (from ORCPT), Action,
 * Status and Diagnostic-Code as the delivery went, with the ENVID and
 * RET=HDRS the client asked for. Folded fields are read unfolded.
 *
 * The instance relays everything to a sink (relayhost), which answers the
 * message for the failing recipient with 550 at the end of data and takes
 * the rest; the notices then travel the same way and are captured there.
 * The sink offers no DSN, so NOTIFY=SUCCESS gets a "relayed" notice, as
 * Postfix sends one. Needs python3 (a peer: skips locally when missing,
 * fails under CI=true). The failure notice uses a bounce_template_file of
 * the test's own, which master hands to the bounce daemon.
 */
import { assertEquals } from "../helpers/assert.ts";
import { freePort, startInstance, waitUntil } from "../helpers/instance.ts";
import { havePeer } from "../helpers/peers.ts";
import { parseDsn, PYTHON } from "../helpers/dsn_python.ts";
import { TestSink } from "../../lib/testrun/sink.ts";
import { SmtpClient } from "../helpers/smtp_client.ts";

/** One SMTP transaction with DSN parameters. */
async function submit(
  port: number,
  mail: string,
  rcpts: string[],
  body: string,
): Promise<void> {
  const c = await SmtpClient.connect(port);
  try {
    const expect = async (line: string, code: string) => {
      const r = await c.command(line);
      if (!r[r.length - 1].startsWith(code)) throw new Error(`${line}: ${r.join(" / ")}`);
    };
    await c.reply();
    await expect("EHLO client.test", "250");
    await expect(mail, "250");
    for (const r of rcpts) await expect(r, "250");
    await expect("DATA", "354");
    const r = await c.command(body.replace(/\r?\n/g, "\r\n") + "\r\n.");
    if (!r[r.length - 1].startsWith("250")) throw new Error(`end of data: ${r.join(" / ")}`);
    await c.command("QUIT").catch(() => {});
  } finally {
    c.close();
  }
}

Deno.test({
  name: "bounce and success notices parse with Python's email library as multipart/report",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (!havePeer(PYTHON)) return;
    const sinkPort = freePort();
    const sink = new TestSink(sinkPort, {
      onMessage: (m) =>
        Promise.resolve(
          m.to.includes("gone@example.net")
            ? "550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown"
            : undefined,
        ),
    });
    sink.start();
    // A failure template of the admin's own (bounce(5)); the others stay built in.
    const templates = await Deno.makeTempFile({ prefix: "dsn-report-", suffix: ".cf" });
    await Deno.writeTextFile(
      templates,
      "failure_template = <<EOF\nSubject: Returned by $mail_name\n\nSorry from $myhostname.\nEOF\n",
    );
    const inst = await startInstance({
      mainCf: [
        `relayhost = [127.0.0.1]:${sinkPort}`,
        "bounce_size_limit = 50000",
        `bounce_template_file = ${templates}`,
      ].join("\n"),
    });
    const notices = () => sink.messages.filter((m) => m.from === "");
    try {
      await submit(
        inst.port,
        "MAIL FROM:<alice@example.com> RET=HDRS ENVID=env+2Dfail",
        ["RCPT TO:<gone@example.net> NOTIFY=FAILURE ORCPT=rfc822;Gone+40example.net"],
        "Subject: will fail\n\nthe body that must not come back\n",
      );
      await submit(
        inst.port,
        "MAIL FROM:<bob@example.com> ENVID=env-ok",
        [
          "RCPT TO:<fine@example.net> NOTIFY=SUCCESS,FAILURE",
          "RCPT TO:<quiet@example.net> NOTIFY=NEVER",
        ],
        "Subject: will pass\n\nbody\n",
      );
      await waitUntil(() => notices().length === 2, 20_000, "two notices at the sink");
      const bounce = notices().find((m) => m.to.includes("alice@example.com"))!;
      const success = notices().find((m) => m.to.includes("bob@example.com"))!;

      await t.step("the bounce: failed, 5.1.1, the remote diagnostic, headers only", async () => {
        const p = await parseDsn(bounce.data);
        assertEquals([p.type, p.reportType, p.defects], [
          "multipart/report",
          "delivery-status",
          [],
        ]);
        assertEquals(p.parts, ["text/plain", "message/delivery-status", "text/rfc822-headers"]);
        assertEquals(p.to, "alice@example.com");
        assertEquals(p.subject, "Returned by $mail_name", "header values are not expanded");
        assertEquals(bounce.data.includes("\r\nSorry from mx.test.example.\r\n"), true, "the text");
        assertEquals(p.autoSubmitted, "auto-replied");
        assertEquals(p.perMessage?.["Original-Envelope-Id"], "env-fail");
        assertEquals(p.perMessage?.["Reporting-MTA"]?.startsWith("dns; "), true);
        assertEquals(p.recipients.length, 1);
        const r = p.recipients[0];
        assertEquals(
          [r["Final-Recipient"], r["Original-Recipient"], r["Action"], r["Status"]],
          ["rfc822; gone@example.net", "rfc822;Gone@example.net", "failed", "5.1.1"],
        );
        assertEquals(
          r["Diagnostic-Code"],
          "smtp; 550 5.1.1 <gone@example.net>: Recipient address rejected: User unknown",
        );
        assertEquals(r["Remote-MTA"], "dns; 127.0.0.1");
        assertEquals(bounce.data.includes("the body that must not come back"), false);
      });

      await t.step("the success notice: relayed, only the recipient that asked", async () => {
        const p = await parseDsn(success.data);
        assertEquals([p.type, p.reportType, p.defects], [
          "multipart/report",
          "delivery-status",
          [],
        ]);
        assertEquals(p.parts, ["text/plain", "message/delivery-status", "text/rfc822-headers"]);
        assertEquals(p.perMessage?.["Original-Envelope-Id"], "env-ok");
        assertEquals(p.subject, "Successful Mail Delivery Report");
        assertEquals(p.recipients.map((r) => [r["Final-Recipient"], r["Action"], r["Status"]]), [
          ["rfc822; fine@example.net", "relayed", "2.0.0"],
        ]);
        assertEquals(p.recipients[0]["Remote-MTA"], "dns; 127.0.0.1");
      });
    } finally {
      sink.stop();
      await inst.stop();
      await Deno.remove(templates);
    }
  },
});
