/**
 * postscreen in front of smtpd, through a whole instance: master.cf runs
 * postscreen on the SMTP port and smtpd as its "pass" service. A client
 * that talks before its turn and a client a DNS deny list names (a local
 * DNSBL zone, served by the test's own name server) are refused; a
 * well-behaved client passes, its mail is delivered through smtpd (which
 * sees the real client through postscreen's PROXY header), and it is
 * remembered: its next connection goes straight to smtpd (PASS OLD, no
 * greeting wait), also after postscreen restarts (the Deno KV cache).
 *
 * Like spf_test.ts, it runs itself again in a private mount namespace
 * whose /etc/resolv.conf names the test's name server; it needs root and
 * unshare (a loud skip locally, a failure under CI=true).
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { resolvNamespaceTest } from "../helpers/namespace.ts";
import type { Zone } from "../helpers/dns_server.ts";
import { ChunkReader } from "../../daemons/postscreen/screen.ts";

const INNER = "POSTSCREEN_TEST_INNER";
const NAMESERVER = Deno.env.get("POSTSCREEN_TEST_NAMESERVER") ??
  `127.0.${1 + Math.floor(Math.random() * 250)}.156`;

const ZONE: Zone = { names: {} };
/** 127.0.0.1 under the deny list: every test client. */
const LISTED = "1.0.0.127.bl.test";

const dec = new TextDecoder();
const enc = new TextEncoder();

/** What arrives on a raw connection within `ms`, as text (a read in flight is kept). */
async function readFor(reader: ChunkReader, ms: number): Promise<string> {
  let out = "";
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const r = await reader.next(deadline - Date.now());
    if (r === "timeout" || r === null) break;
    out += dec.decode(r);
  }
  return out;
}

async function inner(t: Deno.TestContext): Promise<void> {
  const { startDnsServer } = await import("../helpers/dns_server.ts");
  const { startInstance, smtpSend, maildirFiles, waitUntil } = await import(
    "../helpers/instance.ts"
  );
  const { waitForLog } = await import("../helpers/maillog.ts");
  const { SmtpClient } = await import("../helpers/smtp_client.ts");
  const dns = startDnsServer(NAMESERVER, 53, ZONE);
  const master = (await Deno.readTextFile(new URL("../../conf/master.cf", import.meta.url)))
    .replace(
      /^2525(\s+)inet(\s+)n(\s+)-(\s+)n(\s+)-(\s+)-(\s+)smtpd$/m,
      "2525 inet n - n - 1 postscreen\nsmtpd pass - - n - - smtpd",
    );
  assert(master.includes("postscreen"), "master.cf rewritten");
  const inst = await startInstance({
    masterCf: master,
    mainCf: [
      "data_directory = $queue_directory/data",
      "postscreen_access_list =",
      "postscreen_greet_action = enforce",
      "postscreen_greet_wait = 1s",
      "postscreen_dnsbl_sites = bl.test*2",
      "postscreen_dnsbl_threshold = 1",
      "postscreen_dnsbl_action = enforce",
    ].join("\n"),
  });
  const log = () => waitForLog(inst, () => true, 100);
  try {
    await t.step(
      "a client that talks before its turn: PREGREET, every recipient refused",
      async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: inst.port });
        const reader = new ChunkReader(async () => {
          const b = new Uint8Array(4096);
          const n = await conn.read(b);
          return n === null ? null : b.subarray(0, n);
        });
        try {
          const first = await readFor(reader, 300);
          assertMatch(first, /^220-mx\.test\.example /);
          await conn.write(enc.encode("EHLO zombie.test\r\n"));
          const rest = await readFor(reader, 2000);
          assertMatch(rest, /^220 mx\.test\.example /m);
          assertMatch(rest, /^250-mx\.test\.example/m);
          await conn.write(
            enc.encode("MAIL FROM:<z@zombie.test>\r\nRCPT TO:<alice@localhost>\r\n"),
          );
          const replies = await readFor(reader, 1000);
          assertMatch(replies, /^550 5\.5\.1 Protocol error/m);
          await conn.write(enc.encode("QUIT\r\n"));
          await readFor(reader, 300);
        } finally {
          conn.close();
        }
        const text = await waitForLog(
          inst,
          /PREGREET \d+ after [\d.]+ from \[127\.0\.0\.1\]:\d+: EHLO zombie\.test\\r\\n/,
        );
        assertMatch(
          text,
          /postscreen\[\d+\]: NOQUEUE: reject: RCPT from \[127\.0\.0\.1\]:\d+: 550 5\.5\.1 Protocol error; from=<z@zombie\.test>, to=<alice@localhost>, proto=ESMTP, helo=<zombie\.test>/,
        );
      },
    );
    await t.step("a client on the DNS deny list: 550 5.7.1 naming the list", async () => {
      ZONE.names[LISTED] = { A: ["127.0.0.2"] };
      const r = await smtpSend(inst.port, {
        from: "spam@listed.test",
        to: ["alice@localhost"],
        body: "Subject: listed\r\n\r\nx\r\n",
      });
      assertEquals(r.code, 550, r.replies.join("\n"));
      assertMatch(r.text, /Service unavailable; client \[127\.0\.0\.1\] blocked using bl\.test/);
      await waitForLog(inst, /DNSBL rank 2 for \[127\.0\.0\.1\]:\d+/);
      delete ZONE.names[LISTED];
    });
    await t.step("a well-behaved client passes, its mail goes through smtpd", async () => {
      const r = await smtpSend(inst.port, {
        from: "friend@good.test",
        to: ["alice@localhost"],
        body: "Subject: welcome\r\n\r\nhello\r\n",
      });
      assertEquals(r.code, 250, r.replies.join("\n"));
      await waitForLog(inst, /postscreen\[\d+\]: PASS NEW \[127\.0\.0\.1\]:\d+/);
      await waitUntil(
        async () => (await maildirFiles(inst.spool, "alice")).length === 1,
        15_000,
        "delivery",
      );
      const text = await Deno.readTextFile((await maildirFiles(inst.spool, "alice"))[0]);
      // smtpd saw the real client, from the PROXY header.
      assertMatch(text, /Received: from client\.test \(localhost \[127\.0\.0\.1\]\)/);
    });
    await t.step("it is remembered: straight to smtpd, no greeting wait", async () => {
      const started = Date.now();
      const c = await SmtpClient.connect(inst.port);
      try {
        const greeting = await c.reply();
        assertEquals(greeting.length, 1, greeting.join("\n")); // smtpd's 220 alone
        assert(Date.now() - started < 900, `greeting after ${Date.now() - started} ms`);
        await c.command("QUIT");
      } finally {
        c.close();
      }
      await waitForLog(inst, /PASS OLD \[127\.0\.0\.1\]:\d+/);
    });
    await t.step(
      "postscreen restarted: still remembered (PASS OLD from a new process)",
      async () => {
        const before = /postscreen\[(\d+)\]: PASS OLD/.exec(await log())![1];
        await new Deno.Command("kill", { args: ["-TERM", before] }).output();
        await waitUntil(
          async () => {
            // While master restarts it, a connection may be refused or closed.
            const c = await SmtpClient.connect(inst.port).catch(() => null);
            if (!c) return false;
            try {
              await c.reply();
              await c.command("QUIT");
            } catch {
              return false;
            } finally {
              c.close();
            }
            return new RegExp(`postscreen\\[(?!${before}\\])\\d+\\]: PASS OLD`).test(await log());
          },
          20_000,
          "a new postscreen process that remembers",
        );
      },
    );
    await t.step("the memory is on disk (Deno KV, in data_directory)", async () => {
      const st = await Deno.stat(`${inst.queue}/data/postscreen_cache.kv`);
      assert(st.isFile);
      // In worker hosting the kill above takes the whole host down, so a new
      // postscreen may come up before smtpd's pass socket and turn a client
      // away with 421: that warning is expected, no other one is.
      const warnings = (await log()).split("\n")
        .filter((l) => /postscreen.*warning/.test(l))
        .filter((l) => !/cannot connect to service smtpd/.test(l));
      assertEquals(warnings, []);
    });
  } finally {
    // What went wrong is in the log: its end goes with a failure.
    console.log((await inst.log()).split("\n").slice(-30).join("\n"));
    await inst.stop();
    dns.close();
  }
}

resolvNamespaceTest({
  name:
    "postscreen: pregreet and DNSBL clients refused, a good client passes once and is remembered",
  url: import.meta.url,
  inner,
  innerVar: INNER,
  nameserver: NAMESERVER,
  nameserverVar: "POSTSCREEN_TEST_NAMESERVER",
});
