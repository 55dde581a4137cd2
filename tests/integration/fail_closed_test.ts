/**
 * Postwarden fails closed on configuration, end to end: `postwarden check`
 * and `start` refuse settings it cannot honour and name them, the
 * restriction lists that used to be ignored refuse mail through the real
 * smtpd, an smtpd whose master.cf -o settings cannot be honoured does not
 * serve, and a client that never reads its replies is dropped after
 * smtpd_timeout.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import {
  freePort,
  makeConf,
  postwarden,
  processesOf,
  smtpSend,
  startInstance,
} from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A config folder: the embedded conf/ plus `extra` main.cf lines, master.cf as it is. */
const confWith = (extra: string) => makeConf({ mainCf: extra, listen: false });

Deno.test({
  name: "postwarden check and start refuse what Postwarden cannot honour, naming it",
  ...opts,
  fn: async () => {
    const { dir, conf } = await confWith(
      "smtpd_timeout = 0\nsmtpd_recipient_limit = -5\nsmtpd_tls_security_level = encrypt\n" +
        "milter_header_checks = regexp:/etc/postfix/mhc\nheader_checks = nosuchtype:/etc/postfix/hc\n" +
        "mynetworks = !127.0.0.2, 127.0.0.5/0\nsmtpd_proxy_filter = 127.0.0.1:10024\n" +
        "biff = no\nsmtpd_client_restrictions = reject_unverified_sender\n",
    );
    try {
      const c = await postwarden(conf, "check");
      assertEquals(c.code, 1, c.stderr);
      for (
        const re of [
          /error: invalid smtpd_timeout: 0 \(min 1\)/,
          /error: invalid smtpd_recipient_limit parameter value -5 < 1/,
          /error: master\.cf: service 2525: smtpd_tls_security_level = encrypt needs a usable certificate: no server certificate/,
          /error: milter_header_checks = regexp:\/etc\/postfix\/mhc: not implemented/,
          /error: header_checks: table nosuchtype:\/etc\/postfix\/hc: lookup table type "nosuchtype" is not supported/,
          /error: mynetworks: non-null host address bits in "127\.0\.0\.5\/0", perhaps you should use "0\.0\.0\.0\/0" instead/,
          /error: smtpd_proxy_filter = 127\.0\.0\.1:10024: not supported/,
          /warning: parameter biff is not supported by Postwarden and is ignored/,
          /warning: smtpd_client_restrictions: restriction "reject_unverified_sender" is not supported/,
        ]
      ) assertMatch(c.stderr, re);
      const s = await postwarden(conf, "start");
      assertEquals(s.code, 1, s.stderr);
      assertMatch(s.stderr, /invalid smtpd_timeout/);
      assertEquals(await processesOf(conf), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "an smtpd whose master.cf -o settings cannot be honoured does not serve",
  ...opts,
  fn: async () => {
    const { dir, conf } = await confWith("");
    const port = freePort();
    const master = (await Deno.readTextFile(`${conf}/master.cf`)).replace(
      /^2525(\s+inet.*smtpd)$/m,
      `127.0.0.1:${port}$1\n  -o smtpd_tls_security_level=encrypt`,
    );
    await Deno.writeTextFile(`${conf}/master.cf`, master);
    try {
      const s = await postwarden(conf, "start");
      assertEquals(s.code, 1, s.stderr); // master checks each service's -o settings
      assertMatch(
        s.stderr,
        /master\.cf: service 127\.0\.0\.1:\d+: smtpd_tls_security_level = encrypt needs a usable certificate/,
      );
      const refused = await Deno.connect({ hostname: "127.0.0.1", port }).then(
        (c) => (c.close(), false),
        () => true,
      );
      assert(refused, "nothing listens where the encrypt-only smtpd would");
      assertEquals(await processesOf(conf), []);
    } finally {
      await postwarden(conf, "stop");
      for (const pid of await processesOf(conf)) Deno.kill(pid, "SIGKILL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "smtpd_client_restrictions refuses a client outside mynetworks through the real smtpd",
  ...opts,
  fn: async () => {
    const inst = await startInstance({
      mainCf: "mynetworks = 127.0.0.2/32\nsmtpd_client_restrictions = permit_mynetworks, reject",
    });
    try {
      const r = await smtpSend(inst.port, {
        from: "a@example.org",
        to: ["alice@localhost"],
        body: "Subject: x\r\n\r\nx\r\n",
      });
      assertEquals(
        r.replies[3],
        "554 <localhost[127.0.0.1]>: Client host rejected: Access denied", // smtpSend drops 5.7.1
        JSON.stringify(r) + (await inst.log()),
      );
      await waitForLog(inst, "NOQUEUE: reject: RCPT from localhost[127.0.0.1]", 10_000);
    } finally {
      await inst.stop();
    }
  },
});

Deno.test({
  name: "smtpd drops a client that never reads its replies after smtpd_timeout",
  ...opts,
  fn: async () => {
    // Pipelining allowed (Postfix 3.9 would hang up on the burst at once), and past
    // smtpd_junk_command_limit each NOOP would be an error ending the session with
    // 421 before the replies fill the socket buffers: the NOOPs keep the replies coming.
    const inst = await startInstance({
      mainCf:
        "smtpd_timeout = 2s\nsmtpd_forbid_unauth_pipelining = no\nsmtpd_junk_command_limit = 1000000000",
    });
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: inst.port });
    try {
      // A pipelined burst of NOOPs, never reading a reply: once the replies fill the
      // socket buffers, smtpd's writes block.
      const burst = new TextEncoder().encode("NOOP\r\n".repeat(200_000));
      let closed = false;
      const writer = (async () => {
        try {
          for (let i = 0; i < 40 && !closed; i++) {
            let off = 0;
            while (off < burst.length) off += await conn.write(burst.subarray(off));
          }
        } catch {
          closed = true; // smtpd closed the connection
        }
      })();
      await waitForLog(inst, /timeout after NOOP from localhost\[127\.0\.0\.1\]/, 30_000);
      await waitForLog(inst, /disconnect from localhost\[127\.0\.0\.1\] noop=\d+/, 5_000);
      await Promise.race([writer, new Promise((r) => setTimeout(r, 5_000))]);
      assert(closed, "the client's writes fail once smtpd has closed the connection");
    } finally {
      try {
        conn.close();
      } catch {
        // closed
      }
      await inst.stop();
    }
  },
});
