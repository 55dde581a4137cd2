/**
 * Issue 11's MTA-STS acceptance, end to end: a Postwarden instance with
 * postwarden_mta_sts = yes relays mail for three domains whose
 * "_mta-sts" TXT records a local name server (unbound from Debian, on
 * 127.0.X.53:53) publishes and whose "enforce" policies a local HTTPS
 * server (127.0.X.20:443, a certificate from a test CA) serves:
 *
 * - good.sts.test: its MX host presents a certificate from the test CA
 *   for its name: delivered, "Verified";
 * - bad.sts.test: its MX host presents a certificate from another CA:
 *   deferred, "Server certificate not verified", nothing sent;
 * - other.sts.test: its MX record names a host the policy does not:
 *   deferred without a connection.
 *
 * The mtasts daemon fetches each policy once (its log says so) from
 * its sandbox, which grants port 443 of IPv4 addresses and no host name.
 *
 * TLS-RPT (smtp_tlsrpt_enable = yes): each of those sessions is counted by
 * mtasts (read back from its KV store after the run: a success for
 * mx-good, certificate-not-trusted for mx-bad, validation-failure for
 * mx-other), and a day's counters left in the store before the start are
 * reported when master first wakes mtasts (wakeup 2 s here): POSTed
 * gzipped to good.sts.test's https: rua on the local HTTPS server and
 * mailed to its mailto: rua, which the good MX host receives.
 * The smtp client asks the name server of /etc/resolv.conf, so the test
 * runs itself again in a private mount namespace with its own resolv.conf
 * (tests/helpers/namespace.ts). Needs root (ports 25 and 443, the
 * namespace), unbound and openssl: skipped loudly without them, failed
 * under CI=true.
 *
 * @module
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { resolvNamespaceTest } from "../helpers/namespace.ts";
import { issueTestCert, makeTestCert } from "../helpers/tls.ts";
import { startUnbound, UNBOUND_PROGRAMS } from "../helpers/unbound.ts";
import { FakeSmtpServer } from "../../daemons/smtp/_testing.ts";
import { kvReportStore, utcDay } from "../../daemons/mtasts/reports.ts";
import { lookupAccount } from "../../lib/privilege/mod.ts";
import type { TlsRptReport } from "../../lib/mtasts/mod.ts";

const INNER = "MTA_STS_TEST_INNER";
/** Each run its own 127.0.X.0/24 (ports are not private to the namespace). */
const NAMESERVER = Deno.env.get("MTA_STS_TEST_NAMESERVER") ??
  `127.0.${3 + Math.floor(Math.random() * 250)}.53`;
const NET = NAMESERVER.replace(/\.53$/, "");
const GOOD = `${NET}.10`;
const BAD = `${NET}.11`;
const WEB = `${NET}.20`;

const POLICY = (mx: string) => `version: STSv1\r\nmode: enforce\r\nmx: ${mx}\r\nmax_age: 86400\r\n`;

/** One message for `rcpt`, through the instance's smtpd: the end-of-data reply. */
async function submit(port: number, rcpt: string): Promise<string> {
  const r = await smtpSend(port, {
    from: "sender@example.com",
    to: [rcpt],
    body: `Subject: MTA-STS to ${rcpt}\n\nHello.\n`,
  });
  return `${r.code} ${r.text}`;
}

async function inner(t: Deno.TestContext): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mta-sts-test-" });
  // The daemons run as mail_owner: they must reach the CA file below it.
  await Deno.chmod(dir, 0o755);
  for (const d of ["ca", "other", "dns", "kv"]) await Deno.mkdir(`${dir}/${d}`);
  const web = await makeTestCert(
    `${dir}/ca`,
    "mta-sts.good.sts.test",
  );
  const webAll = await issueTestCert(web, "mta-sts.sts.test", [
    "mta-sts.good.sts.test",
    "mta-sts.bad.sts.test",
    "mta-sts.other.sts.test",
    "tlsrpt.sts.test",
  ]);
  const goodCert = await issueTestCert(web, "mx-good.sts.test");
  const badCert = await makeTestCert(`${dir}/other`, "mx-bad.sts.test");
  const unbound = await startUnbound(`${dir}/dns`, {
    hostname: NAMESERVER,
    port: 53,
    zones: [{
      origin: "sts.test",
      signed: false,
      records: [
        ...["good", "bad", "other"].flatMap((d) => [
          `_mta-sts.${d} TXT "v=STSv1; id=20261203"`,
          `mta-sts.${d} A ${WEB}`,
        ]),
        '_smtp._tls.good TXT "v=TLSRPTv1; rua=https://tlsrpt.sts.test/v1,' +
        'mailto:tls-reports@good.sts.test"',
        `tlsrpt A ${WEB}`,
        "good MX 10 mx-good",
        "bad MX 10 mx-bad",
        "other MX 10 mx-other",
        `mx-good A ${GOOD}`,
        `mx-bad A ${BAD}`,
        `mx-other A ${GOOD}`,
        "",
      ].join("\n"),
    }],
  });
  const fetched: string[] = [];
  const posted: { host: string; type: string | null; report: TlsRptReport }[] = [];
  const policies = Deno.serve({
    hostname: WEB,
    port: 443,
    cert: webAll.cert,
    key: webAll.key,
    onListen: () => {},
  }, async (req) => {
    const host = new URL(req.url).hostname;
    if (req.method === "POST" && new URL(req.url).pathname === "/v1") {
      const json = req.body!.pipeThrough(new DecompressionStream("gzip"));
      const report = JSON.parse(await new Response(json).text());
      posted.push({ host, type: req.headers.get("content-type"), report });
      return new Response(null, { status: 201 });
    }
    fetched.push(host);
    const policy = {
      "mta-sts.good.sts.test": POLICY("mx-good.sts.test"),
      "mta-sts.bad.sts.test": POLICY("mx-bad.sts.test"),
      "mta-sts.other.sts.test": POLICY("mx-good.sts.test"),
    }[host];
    if (!policy || new URL(req.url).pathname !== "/.well-known/mta-sts.txt") {
      return new Response("not found", { status: 404 });
    }
    return new Response(policy, { headers: { "content-type": "text/plain" } });
  });
  const good = new FakeSmtpServer(
    { tls: { certs: goodCert.cert, key: goodCert.key } },
    { hostname: GOOD, port: 25 },
  );
  const bad = new FakeSmtpServer(
    { tls: { certs: badCert.cert, key: badCert.key } },
    { hostname: BAD, port: 25 },
  );
  // Yesterday's counters, left by an earlier run, for mtasts to report at its first wake-up.
  const cache = `${dir}/kv/mta_sts.kv`;
  const yesterday = utcDay(Date.now() - 86_400_000);
  {
    const kv = await Deno.openKv(cache);
    const store = kvReportStore(kv);
    const event = {
      domain: "good.sts.test",
      policyType: "sts" as const,
      policyString: ["version: STSv1", "mode: enforce", "mx: mx-good.sts.test", "max_age: 86400"],
      mxHost: ["mx-good.sts.test"],
      mx: "mx-good.sts.test",
      ip: GOOD,
    };
    for (let i = 0; i < 4; i++) await store.record(yesterday, { ...event, result: "success" });
    await store.record(yesterday, { ...event, result: "starttls-not-supported" });
    kv.close();
    const owner = await lookupAccount("postfix");
    for await (const e of Deno.readDir(`${dir}/kv`)) {
      await Deno.chown(`${dir}/kv/${e.name}`, owner!.uid, owner!.gid);
    }
    await Deno.chown(`${dir}/kv`, owner!.uid, owner!.gid);
  }
  const master = await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url));
  const inst = await startInstance({
    masterCf: master.replace(/^#(mtasts\s+unix\s+-\s+-\s+n\s+)3600/m, "$12"),
    mainCf: [
      "inet_protocols = ipv4",
      "postwarden_mta_sts = yes",
      "smtp_tlsrpt_enable = yes",
      // Its own policy cache: the default, /var/lib/postfix, outlives the test.
      `postwarden_mta_sts_cache = ${cache}`,
      `postwarden_mta_sts_CAfile = ${web.caFile}`,
      "smtp_tls_loglevel = 1",
    ].join("\n"),
  });
  try {
    await t.step("a policy MX host with a WebPKI certificate for its name: delivered", async () => {
      assertMatch(await submit(inst.port, "user@good.sts.test"), /^250 /);
      const mine = () => good.messages.filter((m) => /MTA-STS to user@good/.test(m.raw));
      await waitUntil(() => mine().length === 1, 30_000, "the message at the good server");
      assert(mine()[0].tls, "over TLS");
      await waitForLog(inst, /to=<user@good\.sts\.test>.*status=sent/);
      const log = await inst.log();
      assertMatch(
        log,
        new RegExp(`Verified TLS connection established to mx-good\\.sts\\.test\\[${GOOD}\\]:25`),
      );
      assertMatch(log, /mtasts\[\d+\]: good\.sts\.test: MTA-STS policy id=20261203 mode=enforce/);
    });

    await t.step("a certificate from another CA: deferred, nothing sent", async () => {
      assertMatch(await submit(inst.port, "user@bad.sts.test"), /^250 /);
      await waitForLog(
        inst,
        /to=<user@bad\.sts\.test>.*status=deferred \(Server certificate not verified\)/,
      );
      assertEquals(bad.messages.length, 0);
      assert(!bad.commands.some((c) => c.startsWith("MAIL")), "no MAIL FROM to the bad server");
    });

    await t.step("an MX host the policy does not name: deferred, no connection", async () => {
      const before = good.connections;
      assertMatch(await submit(inst.port, "user@other.sts.test"), /^250 /);
      await waitForLog(
        inst,
        /to=<user@other\.sts\.test>.*status=deferred \(MX host mx-other\.sts\.test is not named by the MTA-STS policy of other\.sts\.test\)/,
      );
      assertEquals(good.connections, before);
    });

    await t.step("yesterday's TLS report: POSTed and mailed to the domain's rua", async () => {
      await waitUntil(() => posted.length === 1, 30_000, "the report POST");
      assertEquals([posted[0].host, posted[0].type], [
        "tlsrpt.sts.test",
        "application/tlsrpt+gzip",
      ]);
      const r = posted[0].report;
      assertEquals(r["report-id"], `${yesterday}.good.sts.test@mx.test.example`);
      assertEquals(r.policies[0].summary, {
        "total-successful-session-count": 4,
        "total-failure-session-count": 1,
      });
      assertEquals(r.policies[0]["failure-details"]![0]["result-type"], "starttls-not-supported");
      const mailed = () =>
        good.messages.filter((m) => /^TLS-Report-Domain: good\.sts\.test/m.test(m.raw));
      await waitUntil(() => mailed().length === 1, 30_000, "the mailed report");
      assertMatch(mailed()[0].raw, /report-type="tlsrpt"/);
      assertMatch(mailed()[0].rcptTo.join(), /<tls-reports@good\.sts\.test>/);
      await waitForLog(
        inst,
        /mtasts\[\d+\]: TLS report for good\.sts\.test \(.*\) sent to mailto:/,
      );
    });

    await t.step("each policy was fetched once, by host name over HTTPS", () => {
      assertEquals(fetched.sort(), [
        "mta-sts.bad.sts.test",
        "mta-sts.good.sts.test",
        "mta-sts.other.sts.test",
      ]);
    });
  } finally {
    console.log(
      (await inst.log()).split("\n").filter((l) => /smtp\[|mtasts\[/.test(l)).join("\n"),
    );
    await inst.stop();
    await good.close();
    await bad.close();
    await policies.shutdown();
    await unbound.stop();
  }
  try {
    await t.step("today's sessions were counted by mtasts", async () => {
      const kv = await Deno.openKv(cache);
      const counted: string[] = [];
      for await (const e of kv.list({ prefix: ["tlsrpt", utcDay(Date.now())] })) {
        const k = e.key.map(String);
        if (k[4] === "ok") counted.push(`${k[2]} success`);
        if (k[4] === "fail") counted.push(`${k[2]} ${k[6]} ${k[5]}`);
      }
      kv.close();
      // The mailed report went to good.sts.test too: at least two successes there.
      assertEquals([...new Set(counted)].sort(), [
        "bad.sts.test mx-bad.sts.test certificate-not-trusted",
        "good.sts.test success",
        "other.sts.test mx-other.sts.test validation-failure",
      ]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

resolvNamespaceTest({
  name:
    "MTA-STS enforce: policy from a local HTTPS server; wrong certificate defers, right one delivers",
  url: import.meta.url,
  inner,
  innerVar: INNER,
  nameserver: NAMESERVER,
  nameserverVar: "MTA_STS_TEST_NAMESERVER",
  options: "timeout:2 attempts:2",
  peers: [...UNBOUND_PROGRAMS, "/usr/bin/openssl"],
  rootFor: "ports 25 and 443 on 127.0.X.x and a private mount namespace",
  showSteps: true,
});
