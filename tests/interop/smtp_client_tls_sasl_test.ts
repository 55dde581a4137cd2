/**
 * The SMTP client's STARTTLS and SASL against a real Postfix 3.7 smtpd
 * (TLS with a test CA's certificate for mx.test.example, AUTH through a
 * real Dovecot, AUTH only over TLS, relaying only for authenticated
 * clients), with a real Postfix smtp client as the oracle: the same
 * cases go through Postfix's smtp(8) and through Postwarden's agent, and
 * the deferral texts and the "TLS connection established" line must be
 * the same (Postfix adds key-exchange and signature details after the
 * bits, which Deno's TLS library does not expose).
 *
 * Cases: secure level (match=mx.test.example, as a policy table entry)
 * with PLAIN; Postfix's default smtp_sasl_security_options (noplaintext)
 * against a server offering PLAIN LOGIN ("no mechanism available"); a
 * wrong password (the server's 535, soft-bounced); a CA that did not sign
 * the certificate ("Server certificate not verified", after Postfix 3.7's
 * "certificate verification failed for ...: untrusted issuer ..." line).
 *
 * A second test does the same against Postfix's smtp-sink (no STARTTLS,
 * AUTH PLAIN LOGIN that takes any password): mandatory TLS is "4.7.4 TLS
 * is required, but was not offered", AUTH PLAIN in plaintext with
 * "noanonymous", and "no mechanism available" with the default options.
 *
 * Without Postfix, Dovecot, openssl, smtp-sink or root the tests are
 * skipped loudly; under CI=true they fail instead.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { POSTFIX, type PostfixInstance, startPostfix } from "../helpers/postfix.ts";
import { freePort, waitPort } from "../helpers/instance.ts";
import { DOVEADM, DOVECOT, startDovecot } from "../helpers/dovecot.ts";
import { makeTestCert } from "../helpers/tls.ts";
import { QueueFile } from "../../lib/queue/mod.ts";
import { makeContext, queueMessage } from "../../daemons/smtp/_testing.ts";
import { SmtpAgent } from "../../daemons/smtp/deliver.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function peersPresent(): boolean {
  return haveRoot("smtp_client_tls_sasl_test") && havePeer(POSTFIX) && havePeer(DOVECOT) &&
    havePeer(DOVEADM) && havePeer("/usr/bin/openssl");
}

/** One case: main.cf lines for the client, and the password table's password. */
interface Case {
  name: string;
  client: string;
  password: string;
  /** Postwarden's status and reason; Postfix's must be the same. */
  status: "sent" | "deferred";
  reason: RegExp;
}

/** Waits for the client's status line for `rcpt` and returns [status, reason, relay]. */
async function postfixOutcome(
  pf: PostfixInstance,
  rcpt: string,
): Promise<[string, string, string]> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const line = (await pf.log()).split("\n").find((l) =>
      l.includes(`to=<${rcpt}>`) && l.includes("status=")
    );
    const m = line ? /relay=([^,]+), .*status=(\w+) \((.*)\)$/.exec(line) : null;
    if (m) return [m[2], m[3], m[1]];
    await sleep(200);
  }
  throw new Error(`no status for ${rcpt} in Postfix's log:\n${await pf.log()}`);
}

Deno.test({
  name: "smtp client TLS and SASL against Postfix's smtpd, compared with Postfix's smtp client",
  ignore: !peersPresent(),
  ...opts,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "pw-smtpc-" });
    await Deno.chmod(dir, 0o755);
    const cert = await makeTestCert(await Deno.makeTempDir({ dir }), "mx.test.example");
    const other = await makeTestCert(await Deno.makeTempDir({ dir }), "other.test.example");
    for (const f of [cert.certFile, cert.keyFile, cert.caFile, other.caFile]) {
      await Deno.chmod(f, 0o644);
    }
    for (const d of [cert.dir, other.dir]) await Deno.chmod(d, 0o755);
    const dovecot = await startDovecot({ relayuser: "right-password" });
    const server = await startPostfix({
      virtualDomains: "dest.example",
      mainCf: [
        `smtpd_tls_cert_file = ${cert.certFile}`,
        `smtpd_tls_key_file = ${cert.keyFile}`,
        "smtpd_tls_security_level = may",
        "smtpd_tls_auth_only = yes",
        "smtpd_sasl_auth_enable = yes",
        "smtpd_sasl_type = dovecot",
        `smtpd_sasl_path = ${dovecot.socket}`,
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject",
        "smtpd_recipient_restrictions = permit_sasl_authenticated, reject",
      ].join("\n"),
    });
    const hop = `[127.0.0.1]:${server.port}`;
    const clientBase = (password: string) => {
      const files = {
        policy: `${hop} secure match=mx.test.example\n`,
        passwd: `${hop} relayuser:${password}\n`,
      };
      return { files };
    };
    const cases: Case[] = [
      {
        name: "secure with PLAIN over TLS",
        client: "smtp_sasl_security_options = noanonymous",
        password: "right-password",
        status: "sent",
        reason: /^250 2\.0\.0 Ok: queued as \w+$/,
      },
      {
        name: "Postfix's default SASL options: no mechanism available",
        client: "",
        password: "right-password",
        status: "deferred",
        reason: new RegExp(
          "^SASL authentication failed; cannot authenticate to server " +
            "127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]: no mechanism available$",
        ),
      },
      {
        name: "a wrong password",
        client: "smtp_sasl_security_options = noanonymous",
        password: "wrong-password",
        status: "deferred",
        reason: new RegExp(
          "^SASL authentication failed; server 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\] said: " +
            "535 5\\.7\\.8 Error: authentication failed: ",
        ),
      },
      {
        name: "a CA that did not sign the server's certificate",
        client: `smtp_sasl_security_options = noanonymous\nsmtp_tls_CAfile = ${other.caFile}`,
        password: "right-password",
        status: "deferred",
        reason: /^Server certificate not verified$/,
      },
    ];
    try {
      for (const [i, c] of cases.entries()) {
        await t.step(c.name, async () => {
          const caseDir = `${dir}/case${i}`;
          await Deno.mkdir(caseDir);
          await Deno.chmod(caseDir, 0o755);
          const { files } = clientBase(c.password);
          for (const [name, text] of Object.entries(files)) {
            await Deno.writeTextFile(`${caseDir}/${name}`, text, { mode: 0o644 });
          }
          const clientCf = [
            `smtp_tls_policy_maps = texthash:${caseDir}/policy`,
            `smtp_tls_CAfile = ${cert.caFile}`,
            "smtp_tls_loglevel = 1",
            "smtp_sasl_auth_enable = yes",
            `smtp_sasl_password_maps = texthash:${caseDir}/passwd`,
            c.client,
          ].join("\n");

          // Postfix's smtp client: the oracle.
          const pf = await startPostfix({ mainCf: `relayhost = ${hop}\n${clientCf}\n` });
          let oracle: [string, string, string];
          let oracleTls: string | undefined;
          let oracleVerify: string | undefined;
          try {
            const rcpt = `user${i}@dest.example`;
            const sent = await pf.sendmail(
              ["-f", "sender@client.example", rcpt],
              "Subject: t\n\nhi\n",
            );
            assertEquals(sent.code, 0, sent.output);
            oracle = await postfixOutcome(pf, rcpt);
            const lines = (await pf.log()).split("\n");
            oracleTls = lines.find((l) => l.includes("TLS connection established to"));
            oracleVerify = lines.find((l) => l.includes("certificate verification failed"));
          } finally {
            await pf.stop();
          }

          // Postwarden's agent, same configuration.
          const ctx = await makeContext(clientCf + "\n");
          const agent = new SmtpAgent();
          try {
            const req = await queueMessage(ctx, hop, [`pw${i}@dest.example`]);
            const file = await QueueFile.open(req.path);
            const [st] = await agent.deliver(req, file, ctx).finally(() => file.close());
            assertEquals(st.status, c.status, st.reason);
            assertMatch(st.reason, c.reason);
            assertEquals(oracle[0], c.status, `Postfix: ${oracle[1]}`);
            assertMatch(oracle[1], c.reason, `Postfix's own text: ${oracle[1]}`);
            assertEquals(st.relay, oracle[2]);
            const after = (l: string | undefined) => l?.replace(/^.*?smtp\[\d+\]: /, "").trimEnd();
            assertEquals(
              after(ctx.lines.find((l) => l.includes("certificate verification failed"))),
              after(oracleVerify),
            );
            const ours = ctx.lines.find((l) => l.includes("TLS connection established to"));
            if (oracleTls) {
              assert(ours, `Postfix logged ${oracleTls}; we logged nothing`);
              const shape = (l: string) =>
                /: ((?:Verified|Trusted|Untrusted) TLS connection established to \S+: \S+ with cipher \S+ \(\d+\/\d+ bits\))/
                  .exec(l)?.[1];
              assertEquals(shape(ours), shape(oracleTls));
            } else {
              assertEquals(ours, undefined);
            }
          } finally {
            await agent.close();
            await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
          }
        });
      }
    } finally {
      await server.stop();
      await dovecot.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

const SMTP_SINK = "/usr/sbin/smtp-sink";

Deno.test({
  name: "smtp client against smtp-sink, compared with Postfix's smtp client",
  ignore: !(haveRoot("smtp_client_tls_sasl_test") && havePeer(POSTFIX) && havePeer(SMTP_SINK)),
  ...opts,
  async fn(t) {
    const port = freePort();
    const sink = new Deno.Command(SMTP_SINK, {
      args: ["-u", "nobody", `127.0.0.1:${port}`, "10"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const dir = await Deno.makeTempDir({ prefix: "pw-smtpc-sink-" });
    await Deno.chmod(dir, 0o755);
    const hop = `[127.0.0.1]:${port}`;
    await Deno.writeTextFile(`${dir}/passwd`, `${hop} someone:anything\n`, { mode: 0o644 });
    const sasl = `smtp_sasl_auth_enable = yes\nsmtp_sasl_password_maps = texthash:${dir}/passwd\n`;
    const cases: [string, string, string, RegExp][] = [
      [
        "mandatory TLS, not offered",
        "smtp_tls_security_level = encrypt\n",
        "deferred",
        /^TLS is required, but was not offered by host 127\.0\.0\.1\[127\.0\.0\.1\]$/,
      ],
      [
        "AUTH PLAIN in plaintext with noanonymous",
        sasl + "smtp_sasl_security_options = noanonymous\n",
        "sent",
        /^250 2\.0\.0 Ok$/,
      ],
      [
        "the default options allow no mechanism the sink offers",
        sasl,
        "deferred",
        /^SASL authentication failed; cannot authenticate to server 127\.0\.0\.1\[127\.0\.0\.1\]: no mechanism available$/,
      ],
    ];
    try {
      await waitPort(port);
      for (const [i, [name, cf, status, reason]] of cases.entries()) {
        await t.step(name, async () => {
          const pf = await startPostfix({ mainCf: `relayhost = ${hop}\n${cf}` });
          let oracle: [string, string, string];
          try {
            const rcpt = `sink${i}@dest.example`;
            const sent = await pf.sendmail(["-f", "s@client.example", rcpt], "Subject: t\n\nhi\n");
            assertEquals(sent.code, 0, sent.output);
            oracle = await postfixOutcome(pf, rcpt);
          } finally {
            await pf.stop();
          }
          const ctx = await makeContext(cf);
          const agent = new SmtpAgent();
          try {
            const req = await queueMessage(ctx, hop, [`pw${i}@dest.example`]);
            const file = await QueueFile.open(req.path);
            const [st] = await agent.deliver(req, file, ctx).finally(() => file.close());
            assertEquals([st.status, oracle[0]], [status, status], `${st.reason} / ${oracle[1]}`);
            assertMatch(st.reason, reason);
            assertMatch(oracle[1], reason);
            assertEquals(st.relay, oracle[2]);
          } finally {
            await agent.close();
            await Deno.remove(ctx.queue.root, { recursive: true }).catch(() => {});
          }
        });
      }
    } finally {
      try {
        sink.kill("SIGTERM");
      } catch {
        // gone
      }
      await sink.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
