/**
 * Where smtpd's private key lives under the sandbox: master reads the
 * certificate and key and hands them to smtpd, so `postwarden audit` shows
 * that no daemon (smtpd included) can read the key file, and `postwarden
 * check` warns about a key file others can read. Needs openssl(1) for the
 * throwaway certificate.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { freePort, postwarden } from "../helpers/instance.ts";
import { havePeer } from "../helpers/peers.ts";
import { makeTestCert } from "../helpers/tls.ts";

const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

Deno.test({
  name: "postwarden audit and check: smtpd's TLS key is master's to read",
  sanitizeOps: false,
  sanitizeResources: false,
  ignore: !havePeer("/usr/bin/openssl"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "postwarden-tls-audit-" });
    await Deno.chmod(dir, 0o755);
    try {
      const certDir = `${dir}/tls`;
      await Deno.mkdir(certDir, { mode: 0o755 });
      const cert = await makeTestCert(certDir);
      const conf = `${dir}/conf`;
      await Deno.mkdir(conf);
      const main = (await Deno.readTextFile(`${ROOT}/conf/main.cf`)) +
        `myhostname = mx.test.example\nqueue_directory = ${dir}/var\n` +
        `maillog_file = ${dir}/var/log/maillog\nmail_spool_directory = ${dir}/var/mail/\n` +
        `smtpd_tls_security_level = may\nsmtpd_tls_cert_file = ${cert.certFile}\n` +
        `smtpd_tls_key_file = ${cert.keyFile}\n`;
      await Deno.writeTextFile(`${conf}/main.cf`, main);
      const master = (await Deno.readTextFile(`${ROOT}/conf/master.cf`))
        .replace(/^2525(\s+inet)/m, `127.0.0.1:${freePort()}$1`);
      await Deno.writeTextFile(`${conf}/master.cf`, master);

      const quiet = await postwarden(conf, "check");
      assertEquals(quiet.code, 0, quiet.stderr);
      assert(!/private key file/.test(quiet.stderr), quiet.stderr);
      await Deno.chmod(cert.keyFile, 0o644);
      const loud = await postwarden(conf, "check");
      assertEquals(loud.code, 0, loud.stderr);
      assertMatch(
        loud.stderr,
        /warning: master\.cf: service 127\.0\.0\.1:\d+: private key file ".*key\.pem" is accessible by group or others \(mode 0644\)/,
      );

      // Even a world-readable key file is out of every daemon's reach.
      const r = await postwarden(conf, "audit");
      assertEquals(r.code, 0, r.stderr);
      const headers = r.stdout.split("\n").filter((l) => /^\S+\/(inet|unix) \(/.test(l));
      assert(headers.length >= 9, r.stdout);
      const keyLines = r.stdout.split("\n").filter((l) => l.includes("TLS private key file"));
      assertEquals(keyLines.length, headers.length, r.stdout);
      for (const l of keyLines) assertMatch(l, /^ {2}cannot read TLS private key file /);
      const certLines = r.stdout.split("\n").filter((l) => l.includes("TLS certificate file"));
      for (const l of certLines) assertMatch(l, /^ {2}cannot read TLS certificate file /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
