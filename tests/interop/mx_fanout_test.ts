/**
 * One message for 10,000 recipients in 100 domains (issue 9 acceptance):
 * a real DNS server (dnsmasq, run by the test with its own configuration)
 * gives each domain an MX host on its own loopback address, where a sink
 * listens on port 25; Postwarden delivers every recipient exactly once,
 * with smtp_destination_recipient_limit (10) recipients per transaction at
 * most and never more than smtp_destination_concurrency_limit (3)
 * transactions at once at any one destination (default_process_limit
 * leaves room for all of them at once, so the destination limit is what
 * holds).
 *
 * Postwarden's resolver reads /etc/resolv.conf, which must not change on
 * the machine, so the test runs itself again (MX_FANOUT_INNER=1) in a
 * private mount namespace (`unshare -m`) where a resolv.conf naming the
 * test's dnsmasq is bind-mounted over /etc/resolv.conf, as
 * restrictions_dns_test.ts does. Binding port 25 and the namespace need
 * root. Without dnsmasq, unshare or root the test is skipped loudly; under
 * CI=true it fails instead.
 *
 * @module
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { smtpSend, startInstance, waitUntil } from "../helpers/instance.ts";
import { waitForLog } from "../helpers/maillog.ts";
import { havePeer, haveRoot } from "../helpers/peers.ts";
import { ScriptedSink } from "../helpers/scripted_sink.ts";

const INNER = "MX_FANOUT_INNER";
const DNSMASQ = "/usr/sbin/dnsmasq";
const UNSHARE = "/usr/bin/unshare";
/** Each run its own 127.N.0.0/16 (ports are not private to the namespace). */
const NET = Number(Deno.env.get("MX_FANOUT_NET") ?? 2 + Math.floor(Math.random() * 250));
const NAMESERVER = `127.${NET}.0.53`;
const DOMAINS = 100;
const USERS = 100;
const CONCURRENCY = 3;
const RCPT_LIMIT = 10;

const mxAddress = (i: number) => `127.${NET}.1.${i + 1}`;

async function inner(t: Deno.TestContext): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "mx-fanout-" });
  await Deno.chmod(dir, 0o755); // dnsmasq drops root and must read its file
  const conf = `${dir}/dnsmasq.conf`;
  const lines = ["local=/test/"];
  for (let i = 0; i < DOMAINS; i++) {
    lines.push(`mx-host=d${i}.test,mx${i}.test,10`, `host-record=mx${i}.test,${mxAddress(i)}`);
  }
  await Deno.writeTextFile(conf, lines.join("\n") + "\n", { mode: 0o644 });
  const dns = new Deno.Command(DNSMASQ, {
    args: [
      "--keep-in-foreground",
      "--no-resolv",
      "--no-hosts",
      `--conf-file=${conf}`,
      `--listen-address=${NAMESERVER}`,
      "--bind-interfaces",
      "--port=53",
      "--pid-file=",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const sinks = Array.from({ length: DOMAINS }, (_, i) => new ScriptedSink(mxAddress(i), 25));
  let inst: Awaited<ReturnType<typeof startInstance>> | null = null;
  try {
    await waitUntil(
      () => Deno.resolveDns("d0.test", "MX").then((r) => r.length === 1, () => false),
      10_000,
      "dnsmasq to answer through /etc/resolv.conf",
    );
    for (const s of sinks) {
      s.stallMs = 20; // long enough for deliveries to one destination to overlap
      s.start();
    }
    inst = await startInstance({
      mainCf: [
        "smtpd_recipient_limit = 10000",
        `smtp_destination_concurrency_limit = ${CONCURRENCY}`,
        `smtp_destination_recipient_limit = ${RCPT_LIMIT}`,
        "inet_protocols = ipv4",
        // Room for every destination's whole window: smtp's maxproc "-" is this.
        `default_process_limit = ${DOMAINS * CONCURRENCY}`,
      ].join("\n"),
    });
    const to: string[] = [];
    for (let u = 0; u < USERS; u++) for (let d = 0; d < DOMAINS; d++) to.push(`u${u}@d${d}.test`);

    await t.step("the message is accepted for 10,000 recipients", async () => {
      const r = await smtpSend(inst!.port, {
        from: "list@example.com",
        to,
        body: "Subject: all\r\n\r\nx\r\n",
      });
      assertEquals(r.code, 250, r.text);
    });

    await t.step("every recipient arrives once, at its own domain's MX host", async () => {
      const count = () => sinks.reduce((n, s) => n + s.delivered.flat().length, 0);
      await waitUntil(() => count() >= to.length, 600_000, "10,000 deliveries");
      await waitForLog(inst!, ": removed", 30_000);
      for (let d = 0; d < DOMAINS; d++) {
        const got = sinks[d].delivered.flat().sort();
        const want = Array.from({ length: USERS }, (_, u) => `u${u}@d${d}.test`).sort();
        assertEquals(got, want, `d${d}.test`);
      }
      const sent = (await inst!.log()).match(/status=sent/g)?.length ?? 0;
      assertEquals(sent, to.length);
    });

    await t.step(
      "per-destination limits held: recipients per delivery, deliveries at once",
      async () => {
        const sample = (await inst!.log()).split("\n").filter((l) => l.includes("status=sent"))
          .filter((_, i) => i % 1000 === 0).join("\n");
        for (const s of sinks) {
          assert(s.delivered.every((rcpts) => rcpts.length <= RCPT_LIMIT), `${s.hostname}`);
          assert(s.maxInTransaction <= CONCURRENCY, `${s.hostname}: ${s.maxInTransaction} at once`);
        }
        // The limit was reached, not merely never approached.
        const most = sinks.map((s) => s.maxInTransaction);
        assert(most.some((n) => n === CONCURRENCY), `some destination at 3: ${most}\n${sample}`);
      },
    );
  } finally {
    await inst?.stop();
    for (const s of sinks) s.stop();
    try {
      dns.kill("SIGTERM");
    } catch {
      // exited
    }
    await dns.status;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "MX fan-out: 10,000 recipients in 100 domains, per-destination limits respected",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    if (Deno.env.get(INNER) === "1") return await inner(t);
    if (!havePeer(DNSMASQ) || !havePeer(UNSHARE) || !haveRoot("port 25 and a mount namespace")) {
      return;
    }
    const dir = await Deno.makeTempDir({ prefix: "mx-fanout-resolv-" });
    try {
      const resolv = `${dir}/resolv.conf`;
      await Deno.writeTextFile(resolv, `nameserver ${NAMESERVER}\noptions timeout:1 attempts:2\n`, {
        mode: 0o644,
      });
      const out = await new Deno.Command(UNSHARE, {
        args: [
          "--mount",
          "--propagation",
          "private",
          "sh",
          "-c",
          'mount --bind "$0" /etc/resolv.conf && exec "$@"',
          resolv,
          Deno.execPath(),
          "test",
          "--allow-all",
          "--no-prompt",
          new URL(import.meta.url).pathname,
        ],
        env: { [INNER]: "1", NO_COLOR: "1", MX_FANOUT_NET: String(NET) },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      await t.step("the run inside the namespace passed", () => {
        if (!out.success) throw new Error(text.slice(-12_000));
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
