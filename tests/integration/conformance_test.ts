/**
 * `postwarden test` (lib/testrun) on the sample configuration
 * docs/examples/company: its tests pass as shipped, and each of seven
 * changed configuration lines makes the tests that guard it fail (a test
 * that cannot fail guards nothing); deliveries are captured, not made
 * (smtp and lmtp reach the runner's sink, pipe runs nothing); a malformed
 * test file fails with its line; the instance leaves no process or folder
 * behind.
 */
import { assert, assertEquals, assertMatch } from "../helpers/assert.ts";
import { processesOf, smtpSend, startInstance } from "../helpers/instance.ts";
import { findTestFiles, recordTest, report, runTests } from "../../lib/testrun/run.ts";
import { copyTree } from "../../lib/testrun/instance.ts";

const SAMPLE = new URL("../../docs/examples/company", import.meta.url).pathname;

/** Every file under a queue's message folders. */
async function queueFiles(queue: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of ["maildrop", "incoming", "active", "deferred", "hold", "corrupt"]) {
    const walk = async (dir: string): Promise<void> => {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(`${dir}/${e.name}`);
        else out.push(`${dir}/${e.name}`);
      }
    };
    await walk(`${queue}/${d}`).catch(() => {});
  }
  return out.sort();
}

/** The sample with one file changed, in a temporary copy. */
async function mutated(file: string, from: RegExp, to: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "conformance-" });
  await Deno.chmod(dir, 0o755);
  await copyTree(SAMPLE, dir);
  const text = await Deno.readTextFile(`${dir}/${file}`);
  assertMatch(text, from);
  await Deno.writeTextFile(`${dir}/${file}`, text.replace(from, to));
  return dir;
}

async function failing(configDir: string): Promise<string[]> {
  const results = await runTests(configDir, await findTestFiles([`${SAMPLE}/tests`]));
  return results.filter((r) => !r.ok).map((r) => r.name.replace(/^.*\//, ""));
}

Deno.test({
  name: "postwarden test: the sample configuration's tests, and the lines they guard",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await t.step("as shipped: every test passes", async () => {
      const results = await runTests(SAMPLE, await findTestFiles([`${SAMPLE}/tests`]));
      assert(results.length >= 8, `${results.length} tests`);
      assertEquals(results.filter((r) => !r.ok), []);
      assertMatch(report(results, "tap"), /^TAP version 13\n1\.\.\d+\nok 1 - /);
      assertEquals(await processesOf("postwarden-conformance-"), [], "nothing left running");
    });

    await t.step("beside a live instance: its ports and queue are not touched", async () => {
      const live = await startInstance();
      try {
        const before = await queueFiles(live.queue);
        const results = await runTests(SAMPLE, await findTestFiles([`${SAMPLE}/tests`]));
        assertEquals(results.filter((r) => !r.ok), []);
        assertEquals(await queueFiles(live.queue), before);
        // The live instance still answers on its port.
        const r = await smtpSend(live.port, {
          from: "a@example.org",
          to: ["postmaster@mx.test.example"],
          body: "Subject: live\n\nlive\n",
        });
        assertEquals(r.code, 250, r.replies.join("\n"));
      } finally {
        await live.stop();
      }
    });

    const cases: [string, string, RegExp, string, string[]][] = [
      [
        "no DNS blocklist",
        "main.cf",
        /^smtpd_recipient_restrictions = .*$/m,
        "smtpd_recipient_restrictions =",
        ["05_blocklisted_client.dialog", "27_listed_office_client.dialog"],
      ],
      [
        "the partner's transport entry gone",
        "transport",
        /^partner\.example .*$/m,
        "",
        ["04_office_relays.dialog"],
      ],
      [
        "the office network no longer in mynetworks",
        "main.cf",
        /^mynetworks = .*$/m,
        "mynetworks = 127.0.0.0/8",
        [
          "04_office_relays.dialog",
          "27_listed_office_client.dialog",
          "31_unreachable_domain_bounces.dialog",
          "36_internal_headers_removed.dialog",
        ],
      ],
      [
        "postmaster's alias gone",
        "aliases",
        /^postmaster .*$/m,
        "",
        ["10_local_alias.dialog"],
      ],
      [
        "sales@ for alice instead of bob",
        "virtual",
        /^sales@example\.com .*$/m,
        "sales@example.com     alice@mx.example.com",
        ["09_sales_to_bob.dialog", "29_two_domains_one_message.dialog"],
      ],
      [
        "the submission port open to mynetworks without AUTH",
        "master.cf",
        /smtpd_recipient_restrictions=permit_sasl_authenticated,reject$/m,
        "smtpd_recipient_restrictions=permit_mynetworks,permit_sasl_authenticated,reject",
        ["34_submission_wrong_password.dialog", "35_submission_no_auth_no_mail.dialog"],
      ],
      [
        "no header_checks",
        "main.cf",
        /^header_checks = .*$/m,
        "",
        ["36_internal_headers_removed.dialog"],
      ],
    ];
    for (const [what, file, from, to, expected] of cases) {
      await t.step(`${what}: ${expected.join(", ")} fails`, async () => {
        const dir = await mutated(file, from, to);
        try {
          assertEquals(await failing(dir), expected);
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      });
    }

    await t.step("--explain: the restriction and table entry, the route and its rule", async () => {
      const results = await runTests(
        SAMPLE,
        [
          "05_blocklisted_client",
          "16_blocked_sender_domain",
          "04_office_relays",
          "02_unknown_virtual_address",
        ].map((n) => `${SAMPLE}/tests/${n}.dialog`),
        { explain: true },
      );
      const [rbl, sender, relay, unlisted] = results.map((r) => r.explain!.join("\n"));
      assertMatch(
        unlisted,
        /recipient <nobody@example\.com>: smtpd_reject_unlisted_recipient: a virtual alias domain's address with no entry in virtual_alias_maps \(texthash:\S+\/company\/virtual\): 550 5\.1\.1 /,
      );
      assertMatch(
        rbl,
        /recipient <info@example\.com>: reject_rbl_client zen\.spamhaus\.org: 554 5\.7\.1 Service unavailable/,
      );
      assertMatch(
        sender,
        /check_sender_access texthash:\S+\/sender_access: 554 5\.7\.1 .*\(table entry: spammer\.example REJECT /,
      );
      assert(!sender.includes("postwarden-conformance-"), "the admin's paths, not the copy's");
      assertMatch(
        relay,
        /route <dave@partner\.example>: smtp:\[relay\.partner\.example\] \(transport_maps: partner\.example smtp:\[relay\.partner\.example\]\)/,
      );
      assertMatch(
        relay,
        /route <someone@elsewhere\.example>: smtp:elsewhere\.example \(default_transport = smtp\)/,
      );
      assertMatch(relay, /recipient <dave@partner\.example>: permit_mynetworks: permit/);
      assertMatch(
        relay,
        /delivery <dave@partner\.example>: sent via relay\.partner\.example\[192\.0\.2\.20\]:25 \(2\.0\.0 250 2\.0\.0 Ok: queued as S\d+\)/,
      );
    });

    await t.step(
      "capture: lmtp reaches the sink, pipe runs nothing, virtual writes the instance's Maildir",
      async () => {
        const dir = await mutated(
          "transport",
          /^partner\.example .*$/m,
          [
            "partner.example       smtp:[relay.partner.example]",
            "lists.example.com     listserv:",
            "store.example.com     lmtp:unix:/nonexistent/lmtp.sock",
          ].join("\n"),
        );
        const marker = `${dir}/pipe-ran`;
        try {
          await Deno.writeTextFile(
            `${dir}/master.cf`,
            `listserv  unix  -       n       n       -       -       pipe\n` +
              `  flags=R user=nobody argv=/usr/bin/touch ${marker} \${recipient}\n`,
            { append: true },
          );
          const main = await Deno.readTextFile(`${dir}/main.cf`);
          await Deno.writeTextFile(
            `${dir}/main.cf`,
            main.replace(
              /^(virtual_alias_domains = .*)$/m,
              "$1\nrelay_domains = lists.example.com, store.example.com\n" +
                "virtual_mailbox_domains = mbox.example.com\n" +
                "virtual_mailbox_maps = inline:{ dan@mbox.example.com=mbox.example.com/dan/ }\n" +
                "virtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000",
            ),
          );
          await Deno.writeTextFile(
            `${dir}/capture.dialog`,
            [
              "client: pc1.office.example.com[10.1.2.3]",
              "s: 220 .*",
              "c: EHLO pc1.office.example.com",
              "s: 250",
              "c: MAIL FROM:<alice@example.com>",
              "s: 250 .*",
              "c: RCPT TO:<news@lists.example.com>",
              "s: 250 .*",
              "c: RCPT TO:<carol@store.example.com>",
              "s: 250 .*",
              "c: RCPT TO:<dan@mbox.example.com>",
              "s: 250 .*",
              "c: DATA",
              "s: 354 .*",
              "c: Subject: captured",
              "c:",
              "c: x",
              "c: .",
              "s: 250 .*",
              "delivered: news@lists.example.com",
              "relayed: carol@store.example.com -> mx.example.com[/nonexistent/lmtp.sock]",
              "delivered: dan@mbox.example.com",
              "log: to=<dan@mbox\\.example\\.com>, relay=virtual, .*status=sent \\(delivered to maildir\\)",
              "log: to=<news@lists\\.example\\.com>, relay=listserv, .*status=sent \\(captured: would run /usr/bin/touch \\S+/pipe-ran news@lists\\.example\\.com\\)",
              "header: Subject: captured",
              "",
            ].join("\n"),
          );
          const [r] = await runTests(dir, [`${dir}/capture.dialog`]);
          assertEquals([r.ok, r.failures], [true, []]);
          assert(!(await Deno.stat(marker).then(() => true, () => false)), "the pipe command ran");
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step("--record: today's replies and outcome as a test that then passes", async () => {
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(
          `${dir}/in.dialog`,
          [
            "client: pc1.office.example.com[10.1.2.3]",
            "dns: A relay.partner.example 192.0.2.20",
            "c: EHLO pc1.office.example.com",
            "c: MAIL FROM:<alice@example.com>",
            "c: RCPT TO:<dave@partner.example>",
            "c: DATA",
            "c: Subject: x",
            "c:",
            "c: x",
            "c: .",
            "c: QUIT",
            "",
          ].join("\n"),
        );
        const recorded = await recordTest(SAMPLE, `${dir}/in.dialog`);
        assertMatch(
          recorded,
          /^client: pc1\.office\.example\.com\[10\.1\.2\.3\]\ndns: A relay\.partner\.example 192\.0\.2\.20\ns: 220 /,
        );
        assertMatch(recorded, /\nc: RCPT TO:<dave@partner\.example>\ns: 250 2\\\.1\\\.5 Ok\n/);
        assertMatch(recorded, /\ns: 250 2\\\.0\\\.0 Ok: queued as \\w\+\n/);
        assertMatch(
          recorded,
          /\nqueued: dave@partner\.example -> smtp:\[relay\.partner\.example\]\nrelayed: dave@partner\.example -> relay\.partner\.example\[192\.0\.2\.20\]:25\n$/,
        );
        await Deno.writeTextFile(`${dir}/out.dialog`, recorded);
        const [r] = await runTests(SAMPLE, [`${dir}/out.dialog`]);
        assertEquals([r.ok, r.failures], [true, []]);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("a malformed test file fails with its line, the others still run", async () => {
      const dir = await Deno.makeTempDir();
      try {
        await Deno.writeTextFile(`${dir}/bad.dialog`, "s: 220 .*\nc: QUIT\nexpect-nothing: x\n");
        const results = await runTests(SAMPLE, [
          `${dir}/bad.dialog`,
          `${SAMPLE}/tests/07_helo_required.dialog`,
        ]);
        assertEquals(results.map((r) => r.ok), [false, true]);
        assertMatch(results[0].failures[0], /bad\.dialog:3: unknown keyword "expect-nothing"/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
});
