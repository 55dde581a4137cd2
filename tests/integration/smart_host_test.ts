/**
 * The small site's setup, whole: a Postwarden instance relays everything
 * through an authenticated smart host (relayhost = [host]:port,
 * smtp_tls_security_level = secure through a policy table entry,
 * smtp_tls_CAfile, smtp_sasl_auth_enable with a password table), and the
 * smart host is a real Postfix 3.7 with TLS and Dovecot SASL that relays
 * only for authenticated clients. The smtp daemon runs in its sandbox
 * (as mail_owner when started as root): reading the CA file and the
 * tables is exactly what lib/permissions grants it, and `postwarden audit`
 * must show the CA file readable by smtp only.
 *
 * Without Postfix, Dovecot, openssl or root the test is skipped loudly;
 * under CI=true it fails instead.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { auditSections, smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { POSTFIX, startPostfix } from "../helpers/postfix.ts";
import { DOVEADM, DOVECOT, startDovecot } from "../helpers/dovecot.ts";
import { makeTestCert } from "../helpers/tls.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function peersPresent(): boolean {
  return haveRoot("smart_host_test") && havePeer(POSTFIX) && havePeer(DOVECOT) &&
    havePeer(DOVEADM) && havePeer("/usr/bin/openssl");
}

Deno.test({
  name: "relaying through a smart host with verified TLS and SASL, from the sandbox",
  ignore: !peersPresent(),
  ...opts,
  async fn() {
    const certDir = await Deno.makeTempDir({ prefix: "pw-smarthost-" });
    await Deno.chmod(certDir, 0o755);
    const cert = await makeTestCert(certDir, "smarthost.test.example");
    for (const f of [cert.certFile, cert.keyFile, cert.caFile]) await Deno.chmod(f, 0o644);
    const dovecot = await startDovecot({ relayuser: "relay-secret" });
    const smarthost = await startPostfix({
      virtualDomains: "dest.example",
      mainCf: [
        `smtpd_tls_cert_file = ${cert.certFile}`,
        `smtpd_tls_key_file = ${cert.keyFile}`,
        "smtpd_tls_security_level = may",
        "smtpd_tls_auth_only = yes",
        "smtpd_tls_loglevel = 1",
        "smtpd_sasl_auth_enable = yes",
        "smtpd_sasl_type = dovecot",
        `smtpd_sasl_path = ${dovecot.socket}`,
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject",
        "smtpd_recipient_restrictions = permit_sasl_authenticated, reject",
      ].join("\n"),
    });
    const hop = `[127.0.0.1]:${smarthost.port}`;
    let inst;
    try {
      inst = await startInstance({
        mainCf: [
          `relayhost = ${hop}`,
          "smtp_tls_security_level = encrypt",
          "smtp_tls_policy_maps = texthash:$config_directory/tls_policy",
          "smtp_tls_CAfile = $config_directory/smarthost-ca.pem",
          "smtp_tls_loglevel = 1",
          "smtp_sasl_auth_enable = yes",
          "smtp_sasl_password_maps = texthash:$config_directory/sasl_passwd",
          "smtp_sasl_tls_security_options = noanonymous",
        ].join("\n"),
        confFiles: {
          "tls_policy": `${hop} secure match=smarthost.test.example\n`,
          "sasl_passwd": `${hop} relayuser:relay-secret\n`,
          "smarthost-ca.pem": cert.ca,
        },
      });
      const r = await smtpSend(inst.port, {
        from: "sender@mx.test.example",
        to: ["someone@dest.example"],
        body: "Subject: via the smart host\r\n\r\nhello\r\n",
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      await waitUntil(
        async () => /status=(sent|deferred|bounced)/.test(await inst!.log()),
        60_000,
        "the delivery",
      );
      const log = await inst.log();
      assertMatch(
        log,
        new RegExp(
          `smtp\\[\\d+\\]: Verified TLS connection established to 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:` +
            `${smarthost.port}: TLSv1\\.[23] with cipher `,
        ),
      );
      assertMatch(
        log,
        new RegExp(
          `to=<someone@dest\\.example>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${smarthost.port}, ` +
            `.*dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 Ok: queued as \\w+\\)`,
        ),
      );
      // The smart host saw TLS and the login, and delivered the message.
      await waitUntil(async () => (await smarthost.mailbox()).length === 1, 30_000, "delivery");
      const theirs = await smarthost.log();
      assertMatch(theirs, /TLS connection established from \S+\[127\.0\.0\.1\]/);
      assertMatch(theirs, /sasl_method=(PLAIN|LOGIN), sasl_username=relayuser/);
      // The CA file and the password table are the SMTP clients' alone to read
      // (master.cf's smtp and relay services both run the smtp command).
      const audit = await auditSections(inst);
      const ca = `${inst.conf}/smarthost-ca.pem`;
      const passwd = `${inst.conf}/sasl_passwd`;
      const smtp = (audit.sections.get("smtp") ?? []).join("\n");
      assert(smtp.includes(ca), `smtp's audit does not name ${ca}:\n${smtp}`);
      assertMatch(smtp, new RegExp(`can {4}read table file ${passwd}`));
      for (const [name, lines] of audit.sections) {
        if (name === "smtp" || name === "relay") continue;
        // (A Worker's section also prints its host's flags, the union of all of theirs.)
        const text = lines.filter((l) => !l.startsWith("  host flags:")).join("\n");
        assert(
          !text.includes(ca) && !new RegExp(`can {4}read table file ${passwd}`).test(text),
          `${name} can read them:\n${text}`,
        );
      }
    } finally {
      await inst?.stop();
      await smarthost.stop();
      await dovecot.stop();
      await Deno.remove(certDir, { recursive: true }).catch(() => {});
    }
  },
});
