/**
 * Stock Postfix files carry over: Debian's main.cf (as its postinst writes
 * it for "Internet Site") and Postfix's stock master.cf either start
 * Postwarden or stop it with a message naming each missing piece, and
 * nothing they configure is dropped silently. Only the listener's address
 * and the queue and log paths are changed, to run on a test port.
 *
 * Needs Postfix's stock master.cf from the Postfix package
 * (scripts/install-peers.sh); without it the test skips loudly, and fails
 * under CI=true.
 */
import { wakeService } from "../../lib/service/wake.ts";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import {
  freePort,
  maildirFiles,
  postwarden,
  processesOf,
  smtpSend,
  waitPort,
  waitUntil,
} from "../helpers/instance.ts";
import { havePeer, run } from "../helpers/peers.ts";

const STOCK_MASTER = "/usr/share/postfix/master.cf.dist";
const opts = { sanitizeOps: false, sanitizeResources: false };

/** What Debian's postinst writes into main.cf for an "Internet Site". */
function debianMainCf(dir: string): string {
  return [
    "smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)",
    "biff = no",
    "append_dot_mydomain = no",
    "readme_directory = no",
    "compatibility_level = 3.6",
    "smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem",
    "smtpd_tls_key_file=/etc/ssl/private/ssl-cert-snakeoil.key",
    "smtpd_tls_security_level=may",
    "smtp_tls_CApath=/etc/ssl/certs",
    "smtp_tls_security_level=may",
    "smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache",
    "smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
    "myhostname = mx.debian.example",
    "alias_maps = hash:/etc/aliases",
    "alias_database = hash:/etc/aliases",
    `myorigin = ${dir}/mailname`,
    "mydestination = $myhostname, debian.example, localhost.example, localhost",
    "relayhost =",
    "mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
    "mailbox_size_limit = 0",
    "recipient_delimiter = +",
    "inet_interfaces = all",
    "inet_protocols = all",
    // The test's own paths (Debian's are /var/spool/postfix and syslog).
    `queue_directory = ${dir}/var`,
    `maillog_file = ${dir}/var/log/maillog`,
    `mail_spool_directory = ${dir}/var/mail/`,
  ].join("\n") + "\n";
}

Deno.test({
  name: "Debian's main.cf and the stock master.cf: each missing piece named, then mail flows",
  ...opts,
  fn: async () => {
    if (!havePeer(STOCK_MASTER)) return;
    const stock = await Deno.readTextFile(STOCK_MASTER);
    const dir = await Deno.makeTempDir({ prefix: "postwarden-stock-" });
    await Deno.chmod(dir, 0o755);
    const conf = `${dir}/conf`;
    await Deno.mkdir(conf);
    const port = freePort();
    await Deno.writeTextFile(
      `${conf}/master.cf`,
      stock.replace(/^smtp(\s+inet\s)/m, `127.0.0.1:${port}$1`),
    );
    await Deno.writeTextFile(`${conf}/main.cf`, debianMainCf(dir));
    try {
      // As installed: /etc/mailname missing here; that stops the start.
      const c = await postwarden(conf, "check");
      assertEquals(c.code, 1, c.stderr);
      const errors = c.stderr.split("\n").filter((l) => l.includes(": error: "));
      assertEquals(errors.length, 1, errors.join("\n"));
      assertMatch(errors.join("\n"), /myorigin file .*\/mailname: No such file/);
      // Everything else it configures is named, not dropped.
      for (
        const named of [
          // smtpd's TLS: the snakeoil certificate is missing (a warning: TLS is
          // then off), or its key is readable by the ssl-cert group (a warning).
          /ssl-cert-snakeoil/,
          /smtp_tls_session_cache_database/,
          /chroot=y \(127\.0\.0\.1:\d+, pickup, cleanup/,
          /service local \(local\): unprivileged=n/,
          ...["tlsmgr", "rewrite", "verify", "flush", "proxywrite", "showq"].map(
            (s) => new RegExp(`service ${s} \\(\\S+\\): skipped`),
          ),
          ...["scache", "postlog"].map(
            (s) => new RegExp(`service ${s} \\(\\S+\\): skipped`),
          ),
        ]
      ) assertMatch(c.stderr, named);
      const s = await postwarden(conf, "start");
      assertEquals(s.code, 1, "start refuses what check refuses");
      assertMatch(s.stderr, /mailname/);
      assertEquals(await processesOf(conf), []);

      // What the messages say to do, and it runs: Debian's relay service
      // (-o syslog_name=postfix/$service_name) included.
      // Debian's postinst runs newaliases; here the aliases live beside the
      // test (readable by the mail owner) and postalias builds them.
      await Deno.writeTextFile(`${dir}/mailname`, "debian.example\n");
      await Deno.chmod(dir, 0o711);
      await Deno.mkdir(`${dir}/etc`, { mode: 0o755 });
      await Deno.writeTextFile(`${dir}/etc/aliases`, "postmaster: root\nalice: root\n");
      await Deno.chmod(`${dir}/etc/aliases`, 0o644);
      await Deno.writeTextFile(
        `${conf}/main.cf`,
        `alias_maps = hash:${dir}/etc/aliases\nalias_database = hash:${dir}/etc/aliases\n`,
        { append: true },
      );
      const na = await run(Deno.execPath(), [
        "run",
        "-A",
        new URL("../../commands/newaliases.ts", import.meta.url).pathname,
        "-c",
        conf,
      ]);
      assertEquals(na.code, 0, na.stderr);
      const s2 = await postwarden(conf, "start");
      assertEquals(s2.code, 0, s2.stderr);
      await waitPort(port);
      const r = await smtpSend(port, {
        from: "bob@example.com",
        to: ["alice@localhost"],
        body: "Subject: stock\r\n\r\nhello\r\n",
      });
      assertEquals(r.code, 250, r.text);
      // alice is an alias of root (Postfix's default local_recipient_maps
      // knows her from alias_maps, through proxymap).
      await waitUntil(
        async () => (await maildirFiles(`${dir}/var/mail`, "root")).length === 1,
        15_000,
        "delivery",
      );
      // Debian's relay service runs with -o syslog_name=postfix/$service_name
      // (started on demand, lib/service/wake.ts).
      await wakeService(`${dir}/var`, "relay");
      let relayRuns = false;
      for (const pid of await processesOf(conf)) {
        const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "");
        if (cmd.includes("\0-n\0relay\0")) relayRuns = true;
      }
      assert(relayRuns, "the relay service runs");
      const log = await Deno.readTextFile(`${dir}/var/log/maillog`);
      assert(!/ fatal: /.test(log), log);
    } finally {
      await postwarden(conf, "stop");
      for (const pid of await processesOf(conf)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
