/**
 * postwarden_reject_spf_fail through a whole instance and a real name
 * server: smtpd's sandbox gets the name server because the restriction is
 * listed (lib/permissions), lib/spf asks it through lib/dns, and the
 * replies and the Received-SPF: header reach the client and the mailbox.
 * The SPF records use include, a, mx, redirect and a macro (exists with
 * %{i}), so more than one TXT, A and MX query is made per check.
 *
 * Like restrictions_dns_test.ts, the test runs itself again in a private
 * mount namespace whose /etc/resolv.conf names the test's own name server
 * (tests/helpers/namespace.ts); it needs root and unshare (a loud skip
 * locally, a failure under CI=true). Postfix has no built-in SPF, so there
 * is nothing to compare with here; lib/spf's own tests compare the
 * evaluator with mailauth's.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { resolvNamespaceTest } from "../helpers/namespace.ts";
import type { Zone } from "../helpers/dns_server.ts";

const INNER = "SPF_TEST_INNER";
const NAMESERVER = Deno.env.get("SPF_TEST_NAMESERVER") ??
  `127.0.${1 + Math.floor(Math.random() * 250)}.154`;

/** The client of every session is 127.0.0.1. */
const ZONE: Zone = {
  names: {
    // include: the second domain lists the client.
    "good.test": { TXT: ["v=spf1 include:_spf.provider.test -all"] },
    "_spf.provider.test": { TXT: ["v=spf1 a:out.provider.test mx ip4:192.0.2.0/24 ~all"] },
    "out.provider.test": { A: ["127.0.0.1"] },
    // fail: another network only.
    "bad.test": { TXT: ["v=spf1 mx -all"], MX: [[10, "mx.bad.test"]] },
    "mx.bad.test": { A: ["192.0.2.66"] },
    // redirect to a record with a macro: exists:%{i}.allow.test
    "macro.test": { TXT: ["v=spf1 redirect=_spf.macro.test"] },
    "_spf.macro.test": { TXT: ["v=spf1 exists:%{i}.allow.test -all"] },
    "127.0.0.1.allow.test": { A: ["127.0.0.2"] },
  },
  servfail: ["broken.test"],
};

async function inner(t: Deno.TestContext): Promise<void> {
  const { startDnsServer } = await import("../helpers/dns_server.ts");
  const { startInstance, smtpSend, maildirFiles, waitUntil } = await import(
    "../helpers/instance.ts"
  );
  const dns = startDnsServer(NAMESERVER, 53, ZONE);
  const inst = await startInstance({
    mainCf: "smtpd_sender_restrictions = postwarden_reject_spf_fail",
  });
  const send = (from: string, subject: string) =>
    smtpSend(inst.port, {
      from,
      to: ["alice@localhost"],
      body: `Subject: ${subject}\r\n\r\nbody\r\n`,
    });
  const mailbox = async (subject: string) => {
    for (const f of await maildirFiles(inst.spool, "alice")) {
      const text = await Deno.readTextFile(f);
      if (text.includes(`Subject: ${subject}\n`)) return text;
    }
    return null;
  };
  try {
    await t.step("pass through include and a: delivered with Received-SPF: pass", async () => {
      const r = await send("user@good.test", "good");
      assertEquals(r.code, 250, r.replies.join("\n"));
      await waitUntil(async () => (await mailbox("good")) !== null, 15_000, "delivery");
      assertMatch(
        (await mailbox("good"))!,
        /\nReceived-SPF: pass \(mx\.test\.example: domain of user@good\.test designates 127\.0\.0\.1 as permitted sender\) client-ip=127\.0\.0\.1; envelope-from="user@good\.test"; helo=client\.test; receiver=mx\.test\.example; identity=mailfrom;/,
      );
    });
    await t.step("fail: 550 5.7.23 at RCPT", async () => {
      const r = await send("user@bad.test", "bad");
      assertEquals(r.code, 550, r.replies.join("\n"));
      assertMatch(r.text, /Sender address rejected: SPF fail for bad\.test/);
    });
    await t.step("a macro behind redirect: pass", async () => {
      const r = await send("user@macro.test", "macro");
      assertEquals(r.code, 250, r.replies.join("\n"));
    });
    await t.step("SERVFAIL: 451 4.7.24, the client tries again later", async () => {
      const r = await send("user@broken.test", "broken");
      assertEquals(r.code, 451, r.replies.join("\n"));
      assertMatch(r.text, /SPF temporary error/);
    });
    await t.step("the name server was asked (smtpd's sandbox allowed it)", () => {
      assert(dns.queries.some((q) => q.endsWith("TXT _spf.provider.test")), dns.queries.join("\n"));
      assert(dns.queries.some((q) => q.endsWith("A 127.0.0.1.allow.test")), dns.queries.join("\n"));
    });
  } finally {
    await inst.stop();
    dns.close();
  }
}

resolvNamespaceTest({
  name: "SPF: postwarden_reject_spf_fail against a real name server, from smtpd's sandbox",
  url: import.meta.url,
  inner,
  innerVar: INNER,
  nameserver: NAMESERVER,
  nameserverVar: "SPF_TEST_NAMESERVER",
});
