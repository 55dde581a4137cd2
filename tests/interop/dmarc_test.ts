/**
 * Postwarden's own DKIM signing, DKIM verification and DMARC through a
 * whole instance, with a real DNS server (dnsmasq from Debian) serving
 * the SPF, DKIM and DMARC records, and two independent verifiers of what
 * Postwarden signs: OpenDKIM's opendkim-testmsg (which asks the same
 * dnsmasq) and mailauth's dkimVerify.
 *
 * One instance does it all: cleanup signs mail from its internal hosts
 * (127.0.0.1) for signed.test with an RSA key made by opendkim-genkey and
 * an Ed25519 key made by openssl; smtpd checks SPF, DKIM and DMARC on
 * everything it receives (postwarden_authentication_checks) and applies
 * DMARC policies (postwarden_reject_dmarc_fail). A message it signed is
 * sent back through XCLIENT as if from 192.0.2.7, which SPF does not
 * allow: DKIM alone makes DMARC pass; tampered with, DMARC fails and the
 * domain's p=reject refuses it with 550 5.7.1. A message a forwarder
 * sealed (lib/arc, with its key in dnsmasq) is recorded arc=pass. Mail
 * from outside gets Postwarden's own ARC seal (postwarden_arc_seal_domain),
 * which mailauth validates; a p=reject domain's message that a trusted
 * sealer (postwarden_arc_trusted_sealers) passed is accepted.
 *
 * Like spf_test.ts, the test runs itself again in a private mount
 * namespace whose /etc/resolv.conf names dnsmasq (tests/helpers/namespace.ts);
 * it needs root, unshare, dnsmasq, opendkim-genkey, opendkim-testmsg and
 * openssl (a loud skip locally, a failure under CI=true).
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { resolvNamespaceTest } from "../helpers/namespace.ts";

const INNER = "DMARC_TEST_INNER";
const enc = new TextEncoder();
const DNSMASQ = "/usr/sbin/dnsmasq";
const GENKEY = "/usr/sbin/opendkim-genkey";
const TESTMSG = "/usr/sbin/opendkim-testmsg";
const OPENSSL = "/usr/bin/openssl";
const NAMESERVER = Deno.env.get("DMARC_TEST_NAMESERVER") ??
  `127.0.${1 + Math.floor(Math.random() * 250)}.155`;

/** The TXT record strings of a DKIM key record, each under 255 octets. */
function txtStrings(record: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < record.length; i += 200) out.push(record.slice(i, i + 200));
  return out;
}

/** dnsmasq's configuration for the test domains (nothing else is answered). */
function dnsmasqConf(keys: { rsa: string; ed25519: string; arc: string }): string {
  const txt = (name: string, ...strings: string[]) =>
    `txt-record=${name},${strings.map((s) => `"${s}"`).join(",")}`;
  return [
    `listen-address=${NAMESERVER}`,
    "bind-interfaces",
    "port=53",
    "no-resolv",
    "no-hosts",
    "no-negcache",
    "local=/test/",
    // signed.test: SPF allows only 127.0.0.1; DMARC p=reject; two keys.
    txt("signed.test", "v=spf1 ip4:127.0.0.1 -all"),
    txt("_dmarc.signed.test", "v=DMARC1; p=reject; adkim=r; aspf=r"),
    txt("rsa._domainkey.signed.test", ...txtStrings(keys.rsa)),
    txt("ed._domainkey.signed.test", keys.ed25519),
    // forwarder.test seals with ARC.
    txt("arc._domainkey.forwarder.test", keys.arc),
    // Postwarden seals as postwarden.test, with the Ed25519 key.
    txt("ed._domainkey.postwarden.test", keys.ed25519),
    // strict.test: p=reject and an SPF that fails everyone here.
    txt("strict.test", "v=spf1 ip4:192.0.2.1 -all"),
    txt("_dmarc.strict.test", "v=DMARC1; p=reject"),
    // sub.strict.test has no record of its own: the organizational domain's applies.
    // quarantine.test: p=quarantine, SPF fails.
    txt("quarantine.test", "v=spf1 -all"),
    txt("_dmarc.quarantine.test", "v=DMARC1; p=quarantine"),
    // monitor.test: p=none.
    txt("monitor.test", "v=spf1 -all"),
    txt("_dmarc.monitor.test", "v=DMARC1; p=none"),
  ].join("\n") + "\n";
}

/** Runs a program; its stdout, or an error with its output. */
async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const p = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await p.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")}: exit ${out.code}: ${text}`);
  return text;
}

async function inner(t: Deno.TestContext): Promise<void> {
  const { startInstance, maildirFiles, waitUntil } = await import("../helpers/instance.ts");
  const { SmtpClient } = await import("../helpers/smtp_client.ts");
  const work = await Deno.makeTempDir({ prefix: "dmarc-test-" });
  // cleanup runs as mail_owner: the key directory must be reachable (an admin would
  // make the keys readable by that user only).
  await Deno.chmod(work, 0o755);
  // The keys, as an admin makes them: opendkim-genkey (PKCS#1 RSA) and openssl (Ed25519).
  await run(GENKEY, ["-D", work, "-d", "signed.test", "-s", "rsa", "-b", "2048"]);
  const rsaRecord = (await Deno.readTextFile(`${work}/rsa.txt`))
    .match(/"([^"]*)"/g)!.map((s) => s.slice(1, -1)).join("");
  await run(OPENSSL, ["genpkey", "-algorithm", "ed25519", "-out", `${work}/ed.pem`]);
  for (const f of ["rsa.private", "ed.pem"]) await Deno.chmod(`${work}/${f}`, 0o644);
  await Deno.writeTextFile(`${work}/signing`, "signed.test  rsa:rsa.private, ed:ed.pem\n", {
    mode: 0o644,
  });
  const der = (await new Deno.Command(OPENSSL, {
    args: ["pkey", "-in", `${work}/ed.pem`, "-pubout", "-outform", "DER"],
    stdout: "piped",
  }).output()).stdout;
  // RFC 8463: the record carries the raw 32-byte key (the end of the SPKI).
  const edRaw = btoa(String.fromCharCode(...der.slice(der.length - 32)));
  // The forwarder's ARC key (the test seals with lib/arc, as a forwarder would).
  const { keyRecordFor, loadSigningKey } = await import("../../lib/dkim/mod.ts");
  const arcKey = await loadSigningKey(await Deno.readTextFile(`${work}/ed.pem`));
  const keys = {
    rsa: rsaRecord.replace(/\s+/g, ""),
    ed25519: `v=DKIM1; k=ed25519; p=${edRaw}`,
    arc: keyRecordFor(arcKey),
  };
  await Deno.writeTextFile(`${work}/dnsmasq.conf`, dnsmasqConf(keys));
  const dnsmasq = new Deno.Command(DNSMASQ, {
    args: [
      "--keep-in-foreground",
      `--conf-file=${work}/dnsmasq.conf`,
      "--pid-file=",
      "--user=root",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const inst = await startInstance({
    mainCf: [
      "postwarden_authentication_checks = spf, dkim, dmarc, arc",
      "smtpd_end_of_data_restrictions = postwarden_reject_dmarc_fail",
      "smtpd_authorized_xclient_hosts = 127.0.0.0/8",
      `postwarden_dkim_signing_table = texthash:${work}/signing`,
      `postwarden_dkim_key_directory = ${work}`,
      "postwarden_dkim_internal_hosts = 127.0.0.1",
      "postwarden_arc_seal_domain = postwarden.test",
      "postwarden_arc_seal_selector = ed",
      "postwarden_arc_seal_key = ed.pem",
      "postwarden_arc_trusted_sealers = forwarder.test",
    ].join("\n"),
  });

  /** One message; with `xclient`, as if from that address. The final reply's lines. */
  const send = async (from: string, body: string, xclient?: string) => {
    const c = await SmtpClient.connect(inst.port);
    try {
      await c.reply();
      await c.command("EHLO client.test");
      if (xclient) {
        const r = await c.command(`XCLIENT ADDR=${xclient} NAME=[UNAVAILABLE]`);
        assertMatch(r[0], /^220/, r.join("\n"));
        await c.command("EHLO client.test");
      }
      let r = await c.command(`MAIL FROM:<${from}>`);
      if (!r[0].startsWith("250")) return r.join("\n");
      r = await c.command("RCPT TO:<alice@localhost>");
      if (!r[0].startsWith("250")) return r.join("\n");
      r = await c.command("DATA");
      if (!r[0].startsWith("354")) return r.join("\n");
      const data = body.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
      r = await c.command(data + (data.endsWith("\r\n") ? "" : "\r\n") + ".");
      await c.command("QUIT").catch(() => {});
      return r.join("\n");
    } finally {
      c.close();
    }
  };
  const mailbox = async (subject: string) => {
    for (const f of await maildirFiles(inst.spool, "alice")) {
      const text = await Deno.readTextFile(f);
      if (text.includes(`Subject: ${subject}\n`)) return text;
    }
    return null;
  };
  const delivered = async (subject: string) => {
    await waitUntil(async () => (await mailbox(subject)) !== null, 15_000, `delivery: ${subject}`);
    return (await mailbox(subject))!;
  };
  /** The message as it was received: local's delivery headers off, CRLF lines. */
  const asSent = (text: string) =>
    text.replace(/^(Return-Path|X-Original-To|Delivered-To): .*\n/gm, "").replace(/\n/g, "\r\n");

  try {
    let signed = "";
    await t.step("mail from an internal host is signed with both keys", async () => {
      const r = await send(
        "user@signed.test",
        "From: User <user@signed.test>\nTo: alice@localhost\nSubject: signed one\n\n" +
          "A message to sign.\n\nWith  two  spaces and a trailing blank line.\n\n",
      );
      assertMatch(r, /^250 /, r);
      signed = await delivered("signed one");
      assertMatch(signed, /\nDKIM-Signature: v=1; a=rsa-sha256; .*d=signed\.test; s=rsa;/s);
      assertMatch(signed, /\nDKIM-Signature: v=1; a=ed25519-sha256; .*s=ed;/s);
      // Received over SMTP from 127.0.0.1: SPF passes and DMARC with it.
      assertMatch(
        signed,
        /\nAuthentication-Results: mx\.test\.example;\n\tspf=pass smtp\.mailfrom=user@signed\.test;\n\tdkim=none;\n\tdmarc=pass header\.from=signed\.test/,
      );
    });
    await t.step("OpenDKIM's opendkim-testmsg verifies the signatures", async () => {
      // It checks every signature and exits non-zero if one fails.
      await run(TESTMSG, [], asSent(signed));
    });
    await t.step("mailauth's dkimVerify verifies both signatures", async () => {
      const { dkimVerify } = await import("mailauth/lib/dkim/verify.js" as string).catch(
        async () => await import("mailauth"),
      ) as { dkimVerify: (m: Uint8Array, o: Record<string, unknown>) => Promise<unknown> };
      const records: Record<string, string> = {
        "rsa._domainkey.signed.test": keys.rsa,
        "ed._domainkey.signed.test": keys.ed25519,
      };
      const resolver = (name: string, type: string) => {
        const v = records[name.toLowerCase()];
        if (type !== "TXT" || !v) {
          return Promise.reject(Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" }));
        }
        return Promise.resolve([txtStrings(v)]);
      };
      const res = await dkimVerify(new TextEncoder().encode(asSent(signed)), { resolver }) as {
        results: { status: { result: string }; signingDomain: string; selector: string }[];
      };
      const got = res.results.map((r) => `${r.selector}:${r.status.result}`).sort();
      assertEquals(got, ["ed:pass", "rsa:pass"], JSON.stringify(res.results, null, 1));
    });
    await t.step("sent back from an address SPF refuses: DKIM makes DMARC pass", async () => {
      // Its Authentication-Results header claims our authserv-id: it is replaced.
      const r = await send("user@signed.test", asSent(signed), "192.0.2.7");
      assertMatch(r, /^250 /, r);
      let text = "";
      await waitUntil(
        async () => {
          for (const f of await maildirFiles(inst.spool, "alice")) {
            const x = await Deno.readTextFile(f);
            if (x.includes("Subject: signed one\n") && /spf=fail/.test(x)) text = x;
          }
          return text !== "";
        },
        15_000,
        "second delivery",
      );
      assertMatch(text, /\n\tspf=fail smtp\.mailfrom=user@signed\.test;/);
      assertMatch(text, /\n\tdkim=pass header\.d=signed\.test header\.s=rsa header\.b=/);
      assertMatch(text, /\n\tdkim=pass header\.d=signed\.test header\.s=ed header\.b=/);
      assertMatch(text, /\n\tdmarc=pass header\.from=signed\.test/);
    });
    await t.step("tampered with: DMARC fails, p=reject refuses it with 550 5.7.1", async () => {
      const tampered = asSent(signed).replace("A message to sign.", "A message to sign!");
      const r = await send("user@signed.test", tampered, "192.0.2.7");
      assertMatch(r, /^550 5\.7\.1 Email rejected per DMARC policy for signed\.test/, r);
    });
    await t.step("no signature and SPF fail for a p=reject domain: 550 5.7.1", async () => {
      const r = await send(
        "ceo@strict.test",
        "From: CEO <ceo@strict.test>\nSubject: wire money\n\nNow.\n",
      );
      assertMatch(r, /^550 5\.7\.1 Email rejected per DMARC policy for strict\.test/, r);
    });
    await t.step("a subdomain without a record gets the organizational domain's", async () => {
      const r = await send(
        "ceo@sub.strict.test",
        "From: <ceo@sub.strict.test>\nSubject: sub\n\nx\n",
      );
      assertMatch(r, /^550 5\.7\.1 Email rejected per DMARC policy for sub\.strict\.test/, r);
    });
    await t.step("p=quarantine: accepted into the hold queue", async () => {
      const r = await send("x@quarantine.test", "From: <x@quarantine.test>\nSubject: q\n\nx\n");
      assertMatch(r, /^250 /, r);
      const id = /queued as (\w+)/.exec(r)![1];
      await waitUntil(
        async () => (await Deno.stat(`${inst.queue}/hold/${id}`).catch(() => null)) !== null,
        10_000,
        "held",
      );
    });
    await t.step("p=none: delivered, the verdict recorded", async () => {
      const r = await send("x@monitor.test", "From: <x@monitor.test>\nSubject: monitored\n\nx\n");
      assertMatch(r, /^250 /, r);
      assertMatch(await delivered("monitored"), /\n\tdmarc=fail\s.*header\.from=monitor\.test/s);
    });
    await t.step("a forged Authentication-Results with our authserv-id is removed", async () => {
      const r = await send(
        "user@signed.test",
        "Authentication-Results: mx.test.example; dmarc=pass header.from=bank.test\n" +
          "Authentication-Results: other.example; spf=pass smtp.mailfrom=x@y.test\n" +
          "From: <user@signed.test>\nSubject: forged\n\nx\n",
      );
      assertMatch(r, /^250 /, r);
      const text = await delivered("forged");
      assert(!text.includes("header.from=bank.test"), text);
      assertMatch(text, /\nAuthentication-Results: other\.example; spf=pass/);
      assertEquals(text.match(/\nAuthentication-Results: mx\.test\.example;/g)?.length, 1, text);
    });
    await t.step("ARC: a forwarder's sealed message is recorded arc=pass", async () => {
      const { ArcValidator, sealMessage } = await import("../../lib/arc/mod.ts");
      const message = enc.encode(
        "From: <list@monitor.test>\r\nSubject: forwarded\r\n\r\nvia a list\r\n",
      );
      const none = new ArcValidator();
      none.write(message);
      const chain = await none.finish({ resolveTxt: () => Promise.resolve([]) });
      const set = await sealMessage([message], chain, "spf=pass smtp.mailfrom=list@monitor.test", {
        domain: "forwarder.test",
        selector: "arc",
        key: arcKey,
        authservId: "mx.forwarder.test",
      });
      const r = await send("list@monitor.test", set! + new TextDecoder().decode(message));
      assertMatch(r, /^250 /, r);
      assertMatch(await delivered("forwarded"), /\n\tarc=pass header\.oldest-pass=\d+\n/);
      assertMatch(await inst.log(), /authentication-results: .*; arc=none\n/);
    });
    await t.step("mail from outside gets our ARC seal, which mailauth validates", async () => {
      const r = await send(
        "list@monitor.test",
        "From: <list@monitor.test>\nTo: alice@localhost\nSubject: sealed here\n\nfrom outside\n",
        "192.0.2.10",
      );
      assertMatch(r, /^250 /, r);
      const text = await delivered("sealed here");
      assertMatch(
        text,
        /\nARC-Seal: i=1; a=ed25519-sha256; t=\d+; cv=none; d=postwarden\.test;\s+s=ed;/,
      );
      assertMatch(text, /\nARC-Authentication-Results: i=1; mx\.test\.example;\n\tspf=/);
      const mailauth = await import("mailauth") as unknown as {
        authenticate: (m: Uint8Array, o: Record<string, unknown>) => Promise<{
          arc: { status: { result: string }; i: number | false };
        }>;
      };
      const records: Record<string, string> = { "ed._domainkey.postwarden.test": keys.ed25519 };
      const { arc } = await mailauth.authenticate(enc.encode(asSent(text)), {
        resolver: (name: string, type: string) => {
          const v = records[name.toLowerCase()];
          return type === "TXT" && v
            ? Promise.resolve([txtStrings(v)])
            : Promise.reject(Object.assign(new Error("ENOTFOUND"), { code: "ENOTFOUND" }));
        },
        mta: "next.example",
        ip: "192.0.2.1",
        helo: "mx.test.example",
        sender: "list@monitor.test",
        disableDmarc: true,
        disableBimi: true,
      });
      assertEquals([arc.status.result, arc.i], ["pass", 1]);
      // Our own users' mail is DKIM-signed, not sealed.
      assert(!signed.includes("ARC-Seal:"), signed);
    });
    await t.step("a trusted sealer's ARC pass overrides a DMARC fail (p=reject)", async () => {
      const { ArcValidator, sealMessage } = await import("../../lib/arc/mod.ts");
      const message = enc.encode(
        "From: <ceo@strict.test>\r\nTo: alice@localhost\r\nSubject: via trusted forwarder\r\n" +
          "\r\nforwarded\r\n",
      );
      const none = new ArcValidator();
      none.write(message);
      const chain = await none.finish({ resolveTxt: () => Promise.resolve([]) });
      const set = await sealMessage([message], chain, "dmarc=pass header.from=strict.test", {
        domain: "forwarder.test",
        selector: "arc",
        key: arcKey,
        authservId: "mx.forwarder.test",
      });
      const r = await send(
        "bounces@forwarder.test",
        set! + new TextDecoder().decode(message),
        "192.0.2.20",
      );
      assertMatch(r, /^250 /, r);
      const text = await delivered("via trusted forwarder");
      assertMatch(
        text,
        /\n\tdmarc=fail\s+reason="overridden by ARC pass from trusted sealer forwarder\.test"/,
      );
      assertMatch(
        await inst.log(),
        /DMARC fail for strict\.test overridden: ARC pass from trusted sealer forwarder\.test/,
      );
    });
    await t.step("the log has one authentication-results line per message", async () => {
      const log = await inst.log();
      assertMatch(log, /: authentication-results: mx\.test\.example; spf=fail/);
    });
  } finally {
    // What went wrong is in the log: show its end with the failure.
    console.log((await inst.log()).split("\n").slice(-40).join("\n"));
    await inst.stop();
    dnsmasq.kill();
    await dnsmasq.status;
    await Deno.remove(work, { recursive: true });
  }
}

resolvNamespaceTest({
  name: "DKIM signing, DKIM, DMARC and ARC checks against dnsmasq, opendkim-testmsg and mailauth",
  url: import.meta.url,
  inner,
  innerVar: INNER,
  nameserver: NAMESERVER,
  nameserverVar: "DMARC_TEST_NAMESERVER",
  peers: [DNSMASQ, GENKEY, TESTMSG, OPENSSL],
});
