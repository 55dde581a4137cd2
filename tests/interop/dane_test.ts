/**
 * Issue 11's DANE acceptance, end to end: a Postwarden instance with
 * smtp_tls_security_level = dane and smtp_dns_support_level = dnssec
 * relays through a real validating resolver (unbound from Debian, on
 * 127.0.X.53:53, serving a zone signed here with ldns-signzone) to two
 * SMTP servers on port 25 of 127.0.X.10 and 127.0.X.11. Both MX hosts
 * publish the same DANE-EE TLSA record (3 1 1, the first server's public
 * key): mail for good.dane.test reaches the first server over
 * authenticated TLS; mail for bad.dane.test, whose server presents
 * another certificate, is deferred ("Server certificate not verified")
 * and never sent in plaintext; a host whose TLSA records were altered
 * after signing (bogus, so the resolver answers SERVFAIL) is not
 * connected to at all. A message a client sends with REQUIRETLS (RFC
 * 8689; the instance offers it after STARTTLS) reaches the first server
 * with REQUIRETLS on its MAIL FROM.
 *
 * The smtp client asks the name server of /etc/resolv.conf, so the test
 * runs itself again in a private mount namespace with its own resolv.conf
 * (tests/helpers/namespace.ts). Needs root (port 25, the namespace),
 * unbound, ldnsutils and openssl: skipped loudly without them, failed
 * under CI=true.
 *
 * @module
 */
import { createHash, createPublicKey } from "node:crypto";
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { resolvNamespaceTest } from "../helpers/namespace.ts";
import { makeTestCert, TlsTestClient } from "../helpers/tls.ts";
import { startUnbound, UNBOUND_PROGRAMS } from "../helpers/unbound.ts";
import { FakeSmtpServer } from "../../daemons/smtp/_testing.ts";

const INNER = "DANE_TEST_INNER";
/** Each run its own 127.0.X.0/24 (ports are not private to the namespace). */
const NAMESERVER = Deno.env.get("DANE_TEST_NAMESERVER") ??
  `127.0.${3 + Math.floor(Math.random() * 250)}.53`;
const NET = NAMESERVER.replace(/\.53$/, "");
const GOOD = `${NET}.10`;
const BAD = `${NET}.11`;

/** The SHA-256 of a certificate's public key (TLSA 3 1 1), in hex. */
function spkiSha256(certPem: string): string {
  const spki = createPublicKey(certPem).export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("hex");
}

/** One message for `rcpt`, through the instance's smtpd: the end-of-data reply. */
async function submit(port: number, rcpt: string): Promise<string> {
  const r = await smtpSend(port, {
    from: "sender@example.com",
    to: [rcpt],
    body: `Subject: DANE to ${rcpt}\n\nHello.\n`,
  });
  return `${r.code} ${r.text}`;
}

async function inner(t: Deno.TestContext): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dane-test-" });
  await Deno.mkdir(`${dir}/good`);
  await Deno.mkdir(`${dir}/bad`);
  await Deno.mkdir(`${dir}/dns`);
  const goodCert = await makeTestCert(`${dir}/good`, "mx-good.dane.test");
  // The instance's own smtpd certificate, for a client that sends REQUIRETLS.
  await Deno.mkdir(`${dir}/smtpd`);
  const smtpdCert = await makeTestCert(`${dir}/smtpd`, "mx.test.example");
  await Deno.chmod(dir, 0o755);
  const badCert = await makeTestCert(`${dir}/bad`, "mx-bad.dane.test");
  const tlsa = `TLSA 3 1 1 ${spkiSha256(goodCert.cert)}`;
  const unbound = await startUnbound(`${dir}/dns`, {
    hostname: NAMESERVER,
    port: 53,
    zones: [{
      origin: "dane.test",
      signed: true,
      records: [
        "good MX 10 mx-good",
        `mx-good A ${GOOD}`,
        `_25._tcp.mx-good ${tlsa}`,
        "bad MX 10 mx-bad",
        `mx-bad A ${BAD}`,
        `_25._tcp.mx-bad ${tlsa}`,
        // The good server, but its TLSA record is altered after signing below.
        "bogus MX 10 mx-bogus",
        `mx-bogus A ${GOOD}`,
        `_25._tcp.mx-bogus ${tlsa}`,
        "",
      ].join("\n"),
      alter: (text) =>
        text.replace(
          /^(_25\._tcp\.mx-bogus\.dane\.test\.\s+\d+\s+IN\s+TLSA\s+3 1 1 )(.)/m,
          (_, head, c) => head + (c === "0" ? "1" : "0"),
        ),
    }],
  });
  const good = new FakeSmtpServer(
    { tls: { certs: goodCert.cert, key: goodCert.key }, ehlo: ["PIPELINING", "REQUIRETLS"] },
    { hostname: GOOD, port: 25 },
  );
  const bad = new FakeSmtpServer(
    { tls: { certs: badCert.cert, key: badCert.key } },
    { hostname: BAD, port: 25 },
  );
  const inst = await startInstance({
    mainCf: [
      "inet_protocols = ipv4",
      "smtp_dns_support_level = dnssec",
      "smtp_tls_security_level = dane",
      "smtp_tls_loglevel = 1",
      "smtpd_tls_security_level = may",
      `smtpd_tls_cert_file = ${smtpdCert.certFile}`,
      `smtpd_tls_key_file = ${smtpdCert.keyFile}`,
      "postwarden_requiretls = yes",
    ].join("\n"),
  });
  try {
    await t.step(
      "the right certificate: delivered over TLS the TLSA record authenticates",
      async () => {
        assertMatch(await submit(inst.port, "user@good.dane.test"), /^250 /);
        await waitUntil(() => good.messages.length === 1, 30_000, "the message at the good server");
        assert(good.messages[0].tls, "over TLS");
        await waitForLog(inst, /to=<user@good\.dane\.test>.*status=sent/);
        assertMatch(
          await inst.log(),
          new RegExp(
            `Verified TLS connection established to mx-good\\.dane\\.test\\[${GOOD}\\]:25`,
          ),
        );
      },
    );

    await t.step("a wrong certificate: deferred, nothing sent in plaintext", async () => {
      assertMatch(await submit(inst.port, "user@bad.dane.test"), /^250 /);
      await waitForLog(
        inst,
        /to=<user@bad\.dane\.test>.*status=deferred \(Server certificate not verified\)/,
      );
      assertMatch(
        await inst.log(),
        /server certificate verification failed for mx-bad\.dane\.test\[[\d.]+\]:25: DANE: no TLSA record matches/,
      );
      assertEquals(bad.messages.length, 0);
      assert(!bad.commands.some((c) => c.startsWith("MAIL")), "no MAIL FROM to the bad server");
    });

    await t.step("bogus TLSA records (SERVFAIL from the validator): no connection", async () => {
      const before = good.connections;
      assertMatch(await submit(inst.port, "user@bogus.dane.test"), /^250 /);
      await waitForLog(
        inst,
        /to=<user@bogus\.dane\.test>.*status=deferred \(TLSA lookup error for mx-bogus\.dane\.test:25\)/,
      );
      assertEquals(good.connections, before);
    });

    await t.step("REQUIRETLS from the client goes on to the DANE-authenticated host", async () => {
      const c = new TlsTestClient(await Deno.connect({ hostname: "127.0.0.1", port: inst.port }));
      try {
        await c.reply();
        await c.cmd("EHLO client.test");
        assertMatch(await c.cmd("STARTTLS"), /^220 /);
        await c.startTls(smtpdCert.ca);
        assertMatch(await c.cmd("EHLO client.test"), /\n250-REQUIRETLS\n/);
        assertEquals(await c.cmd("MAIL FROM:<sender@example.com> REQUIRETLS"), "250 2.1.0 Ok");
        assertMatch(await c.cmd("RCPT TO:<secret@good.dane.test>"), /^250 /);
        assertMatch(await c.cmd("DATA"), /^354 /);
        assertMatch(await c.cmd("Subject: secret\r\n\r\nHello.\r\n."), /^250 /);
        await c.cmd("QUIT");
      } finally {
        c.client.close();
      }
      await waitForLog(inst, /to=<secret@good\.dane\.test>.*status=sent/);
      assert(
        good.commands.some((l) => l === "MAIL FROM:<sender@example.com> REQUIRETLS"),
        good.commands.join("\n"),
      );
    });
  } finally {
    console.log((await inst.log()).split("\n").filter((l) => /smtp\[/.test(l)).join("\n"));
    await inst.stop();
    await good.close();
    await bad.close();
    await unbound.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

resolvNamespaceTest({
  name: "DANE: TLSA from a validating unbound; wrong certificate defers, right one delivers",
  url: import.meta.url,
  inner,
  innerVar: INNER,
  nameserver: NAMESERVER,
  nameserverVar: "DANE_TEST_NAMESERVER",
  options: "timeout:2 attempts:2",
  peers: [...UNBOUND_PROGRAMS, "/usr/bin/openssl"],
  rootFor: "port 25 on 127.0.X.x and a private mount namespace",
  showSteps: true,
});
