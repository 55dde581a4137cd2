/**
 * Issue 9's fan-out acceptance: one message for 10,000 recipients in 100
 * domains, whose MX records a real DNS server (dnsmasq from Debian) points
 * at 100 SMTP sinks on 127.0.2.1 to 127.0.2.100 port 25, is delivered
 * with the per-destination limits respected: each recipient reaches its
 * own domain's sink exactly once, no sink ever has more connections open
 * than smtp_destination_concurrency_limit, and no transaction carries more
 * recipients than smtp_destination_recipient_limit.
 *
 * The smtp client asks the name servers of /etc/resolv.conf, and the
 * machine's must not change, so the test runs itself again (with
 * MX_FANOUT_INNER=1) in a private mount namespace (`unshare -m`) where a
 * resolv.conf naming dnsmasq is bind-mounted over /etc/resolv.conf:
 * dnsmasq, the sinks and the instance started inside see it, nothing
 * outside does (as tests/interop/restrictions_dns_test.ts). Needs root
 * (port 25, the namespace) and dnsmasq: skipped loudly without them,
 * failed under CI=true.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { resolvNamespaceTest } from "../helpers/namespace.ts";
import { startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { TestSink } from "../../lib/testrun/sink.ts";
import { SmtpClient } from "../helpers/smtp_client.ts";

const INNER = "MX_FANOUT_INNER";
const DNSMASQ = "/usr/sbin/dnsmasq";
/** Each run its own loopback address for dnsmasq (ports are not private to the namespace). */
const NAMESERVER = Deno.env.get("MX_FANOUT_NAMESERVER") ??
  `127.0.${3 + Math.floor(Math.random() * 250)}.53`;

const DOMAINS = 100;
const PER_DOMAIN = 100;
const CONCURRENCY = 3;
const RCPT_LIMIT = 25;

const domain = (d: number) => `d${d}.fanout.test`;

/** dnsmasq's configuration: an MX and an A record per domain, nothing else answered. */
function dnsmasqConf(): string {
  const lines = [
    `listen-address=${NAMESERVER}`,
    "bind-interfaces",
    "port=53",
    "no-resolv",
    "no-hosts",
    "no-negcache",
    "local=/fanout.test/",
  ];
  for (let d = 1; d <= DOMAINS; d++) {
    lines.push(`mx-host=${domain(d)},mx.${domain(d)},10`);
    lines.push(`host-record=mx.${domain(d)},127.0.2.${d}`);
  }
  return lines.join("\n") + "\n";
}

/** One transaction with every recipient: RCPTs pipelined in batches. */
async function submit(port: number, rcpts: string[]): Promise<string> {
  const c = await SmtpClient.connect(port);
  try {
    await c.reply();
    await c.command("EHLO client.test");
    await c.command("MAIL FROM:<list@example.com>");
    for (let i = 0; i < rcpts.length; i += 500) {
      const batch = rcpts.slice(i, i + 500);
      await c.send(batch.map((r) => `RCPT TO:<${r}>\r\n`).join(""));
      for (const r of batch) {
        const reply = await c.reply();
        if (!reply[0].startsWith("250")) throw new Error(`RCPT ${r}: ${reply.join(" / ")}`);
      }
    }
    const data = await c.command("DATA");
    if (!data[0].startsWith("354")) throw new Error(`DATA: ${data.join(" / ")}`);
    const end = await c.command("Subject: fan-out\r\n\r\nOne message, many domains.\r\n.");
    await c.command("QUIT").catch(() => {});
    return end.join(" / ");
  } finally {
    c.close();
  }
}

async function inner(t: Deno.TestContext): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mx-fanout-" });
  await Deno.writeTextFile(`${dir}/dnsmasq.conf`, dnsmasqConf());
  const dnsmasq = new Deno.Command(DNSMASQ, {
    args: ["--keep-in-foreground", `--conf-file=${dir}/dnsmasq.conf`, "--pid-file=", "--user=root"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const sinks: TestSink[] = [];
  for (let d = 1; d <= DOMAINS; d++) {
    // Each transaction holds its connection a little, so that a destination's
    // deliveries overlap and the concurrency limit is exercised, not just obeyed.
    const s = new TestSink(25, {
      hostname: `127.0.2.${d}`,
      onMessage: () => new Promise((r) => setTimeout(() => r(undefined), 40)),
    });
    s.start();
    sinks.push(s);
  }
  const inst = await startInstance({
    mainCf: [
      "inet_protocols = ipv4",
      "smtpd_recipient_limit = 20000",
      `smtp_destination_concurrency_limit = ${CONCURRENCY}`,
      // More smtp processes than destinations: once each destination has a
      // delivery in progress, the next ones go to destinations that already
      // have one, so the concurrency limit is exercised, not left to timing
      // (with 100 of each, whether a second one overlapped depended on it).
      `default_process_limit = ${DOMAINS + 50}`,
      `smtp_destination_recipient_limit = ${RCPT_LIMIT}`,
    ].join("\n"),
  });
  try {
    const rcpts: string[] = [];
    for (let i = 1; i <= PER_DOMAIN; i++) {
      for (let d = 1; d <= DOMAINS; d++) rcpts.push(`u${i}@${domain(d)}`);
    }
    const accepted = await submit(inst.port, rcpts);
    await t.step("the message is accepted", () => assert(/^250 /.test(accepted), accepted));
    const delivered = () => sinks.reduce((n, s) => n + s.messages.flatMap((m) => m.to).length, 0);
    await waitUntil(() => delivered() >= rcpts.length, 600_000, "every recipient at a sink");
    await waitForLog(inst, "removed", 60_000);

    await t.step("each recipient reached its own domain's sink exactly once", () => {
      for (let d = 1; d <= DOMAINS; d++) {
        const got = sinks[d - 1].messages.flatMap((m) => m.to).sort();
        const want = Array.from({ length: PER_DOMAIN }, (_, i) => `u${i + 1}@${domain(d)}`).sort();
        assertEquals(got, want, domain(d));
      }
    });
    await t.step(`at most ${RCPT_LIMIT} recipients per transaction`, () => {
      const sizes = sinks.flatMap((s) => s.messages.map((m) => m.to.length));
      assert(Math.max(...sizes) <= RCPT_LIMIT, `largest transaction: ${Math.max(...sizes)}`);
      assertEquals(sizes.length >= DOMAINS * Math.ceil(PER_DOMAIN / RCPT_LIMIT), true);
    });
    await t.step(`at most ${CONCURRENCY} connections per destination at once`, () => {
      const most = Math.max(...sinks.map((s) => s.maxOpen));
      assert(most <= CONCURRENCY, `a sink saw ${most} connections at once`);
      assert(
        sinks.some((s) => s.maxOpen > 1),
        `no destination got parallel deliveries (transactions per sink: ${
          sinks.map((s) => s.messages.length).join(",")
        })`,
      );
    });
  } finally {
    await inst.stop();
    for (const s of sinks) s.stop();
    dnsmasq.kill();
    await dnsmasq.status;
    await Deno.remove(dir, { recursive: true });
  }
}

resolvNamespaceTest({
  name: "10,000 recipients in 100 domains: MX from dnsmasq, per-destination limits respected",
  url: import.meta.url,
  inner,
  innerVar: INNER,
  nameserver: NAMESERVER,
  nameserverVar: "MX_FANOUT_NAMESERVER",
  options: "timeout:2 attempts:2",
  peers: [DNSMASQ],
  rootFor: "port 25 on 127.0.2.x and a private mount namespace",
  showSteps: true,
});
