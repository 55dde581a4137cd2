import { join } from "node:path";
import { assert, assertEquals } from "../../tests/helpers/assert.ts";
import { fakeCleanup } from "../../tests/helpers/fake_cleanup.ts";
import { CleanupSession } from "../../lib/cleanup/client.ts";
import { makeConfig } from "../../lib/config/mod.ts";
import { fakeResolver } from "../../lib/dns/testing.ts";
import { Logger } from "../../lib/log/mod.ts";
import { RequestDeadline, requestDeadlinePolicy } from "./request_deadline.ts";
import { restrictionContext } from "./restrictions.ts";
import { runSession } from "./session.ts";

Deno.test("RequestDeadline", async (t) => {
  const policy = (perRequest: boolean) => ({ perRequest, timeoutMs: 10_000, minDataRate: 100 });
  await t.step("off: every read gets smtpd_timeout", () => {
    const d = new RequestDeadline(policy(false));
    d.start(false);
    d.read(9_000, 1);
    assertEquals(d.limit(), 10_000);
  });
  await t.step("on: the reads of one command share smtpd_timeout", () => {
    const d = new RequestDeadline(policy(true));
    d.start(false);
    d.read(4_000, 1);
    d.read(4_000, 1);
    assertEquals(d.limit(), 2_000);
    d.read(3_000, 1);
    assertEquals(d.limit(), 0);
    d.start(false);
    assertEquals(d.limit(), 10_000);
  });
  await t.step("content: N bytes add N / smtpd_min_data_rate seconds, up to smtpd_timeout", () => {
    const d = new RequestDeadline(policy(true));
    d.start(true);
    d.read(4_000, 200); // -4 s + 2 s
    assertEquals(d.limit(), 8_000);
    d.read(1_000, 100_000); // capped
    assertEquals(d.limit(), 10_000);
    d.read(9_000, 0);
    assertEquals(d.limit(), 1_000);
  });
  await t.step("the parameters and Postfix's defaults (yes under stress)", () => {
    assertEquals(requestDeadlinePolicy(makeConfig("/x", "")), {
      perRequest: false,
      timeoutMs: 300_000,
      minDataRate: 500,
    });
    assertEquals(requestDeadlinePolicy(makeConfig("/x", "stress = yes\n")).perRequest, true);
    assertEquals(
      requestDeadlinePolicy(makeConfig("/x", "smtpd_per_record_deadline = yes\n")).perRequest,
      true,
    );
  });
});

/** A client that sends `script` pieces, each after its delay; then waits forever. */
async function trickle(
  settings: string,
  script: [number, string][],
): Promise<{ logs: string[]; replies: string; ms: number }> {
  const config = makeConfig(
    "/tmp",
    "compatibility_level = 3.6\nsmtpd_forbid_unauth_pipelining = no\n" +
      "mydestination = localhost\n" + settings,
    { hostname: "mx.test.example" },
  );
  const logs: string[] = [];
  const log = new Logger({
    program: "postwarden/smtpd",
    hostname: "mx",
    sinks: [(l) => logs.push(l.replace(/^.*?\]: /, "").replace(/\n$/, ""))],
  });
  const dir = await Deno.makeTempDir({ prefix: "smtpd-deadline-" });
  const socket = join(dir, "cleanup");
  await Deno.mkdir(join(dir, "maildrop"));
  const cleanup = fakeCleanup(socket, join(dir, "maildrop"));
  const enc = new TextEncoder();
  let replies = "";
  let step = 0;
  const started = Date.now();
  try {
    await runSession({
      config,
      log,
      client: { name: "localhost", addr: "127.0.0.1", port: 54321 },
      read: () => {
        const next = script[step++];
        if (!next) return new Promise<never>(() => {});
        return new Promise((r) => setTimeout(() => r(enc.encode(next[1])), next[0]));
      },
      write: (b) => {
        replies += new TextDecoder().decode(b);
        return Promise.resolve();
      },
      openCleanup: () => CleanupSession.open(socket, { retryMs: 0 }),
      restrictions: restrictionContext(config, (m) => log.warn(m), undefined, {
        dns: fakeResolver({}),
      }),
    });
  } finally {
    await cleanup.server.close();
    await Deno.remove(dir, { recursive: true });
  }
  return { logs, replies, ms: Date.now() - started };
}

/** "EHLO x\r\n" one byte at a time, `ms` apart. */
const bytewise = (text: string, ms: number): [number, string][] => [...text].map((c) => [ms, c]);

Deno.test("smtpd_per_request_deadline: a trickling client", async (t) => {
  await t.step(
    "no (Postfix's default): each read gets smtpd_timeout, trickling goes on",
    async () => {
      const r = await trickle("smtpd_timeout = 1s\nsmtpd_per_request_deadline = no\n", [
        ...bytewise("NOOP\r\n", 300),
        [10, "QUIT\r\n"],
      ]);
      assert(/250 2\.0\.0 Ok\r\n/.test(r.replies), r.replies);
      assert(r.logs.some((l) => /^disconnect from .* noop=1 quit=1/.test(l)), r.logs.join("\n"));
    },
  );
  await t.step("yes: the whole command line within smtpd_timeout", async () => {
    const r = await trickle("smtpd_timeout = 1s\nsmtpd_per_request_deadline = yes\n", [
      ...bytewise("NOOP\r\n", 300),
      [10, "QUIT\r\n"],
    ]);
    assert(r.ms >= 900 && r.ms < 2500, `${r.ms} ms`);
    assert(/421 4\.4\.2 mx\.test\.example Error: timeout exceeded\r\n$/.test(r.replies), r.replies);
    assert(r.logs.includes("timeout after CONNECT from localhost[127.0.0.1]"), r.logs.join("\n"));
  });
  await t.step("yes: each new command gets smtpd_timeout again", async () => {
    const r = await trickle("smtpd_timeout = 1s\nsmtpd_per_request_deadline = yes\n", [
      [600, "NOOP\r\n"],
      [600, "NOOP\r\n"],
      [600, "QUIT\r\n"],
    ]);
    assert(r.logs.some((l) => /^disconnect from .* noop=2 quit=1/.test(l)), r.logs.join("\n"));
  });
  const data = (pieces: [number, string][]): [number, string][] => [
    [0, "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<root@localhost>\r\nDATA\r\n"],
    ...pieces,
    [0, ".\r\nQUIT\r\n"],
  ];
  const slowBody: [number, string][] = Array.from(
    { length: 6 },
    () => [400, "x".repeat(38) + "\r\n"],
  );
  await t.step("DATA: content faster than smtpd_min_data_rate keeps the session", async () => {
    const r = await trickle(
      "smtpd_timeout = 1s\nsmtpd_per_request_deadline = yes\nsmtpd_min_data_rate = 100\n",
      data(slowBody),
    );
    assert(/250 2\.0\.0 Ok: queued as CLEANUP1\r\n/.test(r.replies), r.replies);
  });
  await t.step("DATA: slower than smtpd_min_data_rate is cut off", async () => {
    const r = await trickle(
      "smtpd_timeout = 1s\nsmtpd_per_request_deadline = yes\nsmtpd_min_data_rate = 10000\n",
      data(slowBody),
    );
    assert(/421 4\.4\.2 .* timeout exceeded\r\n$/.test(r.replies), r.replies);
    assert(
      r.logs.some((l) =>
        /^timeout after DATA \(\d+ bytes\) from localhost\[127\.0\.0\.1\]$/.test(l)
      ),
      r.logs.join("\n"),
    );
  });
  await t.step("BDAT: a chunk's content is one request", async () => {
    const r = await trickle(
      "smtpd_timeout = 1s\nsmtpd_per_request_deadline = yes\nsmtpd_min_data_rate = 10000\n",
      [
        [0, "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<root@localhost>\r\n"],
        [0, "BDAT 240 LAST\r\n"],
        ...slowBody,
      ],
    );
    assert(/421 4\.4\.2 .* timeout exceeded\r\n$/.test(r.replies), r.replies);
  });
});
