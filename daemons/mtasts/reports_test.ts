/**
 * The TLS-RPT counters and the daily reports (reports.ts) with the DNS,
 * the HTTPS POST and cleanup injected: what is counted per day and
 * policy, what is sent where and when, what is retried, postponed,
 * dropped and given up; the same store contract in memory and in Deno KV.
 */
import { assert, assertEquals, assertMatch } from "../../tests/helpers/assert.ts";
import { DnsError } from "../../lib/dns/mod.ts";
import type { TlsRptEvent, TlsRptReport } from "../../lib/mtasts/mod.ts";
import {
  kvReportStore,
  memoryReportStore,
  type ReportIo,
  ReportSender,
  type ReportStore,
  utcDay,
} from "./reports.ts";
import { recordEvent } from "./main.ts";

const DAY1 = Date.parse("2026-12-01T10:00:00Z");
const DAY2 = Date.parse("2026-12-02T00:30:00Z");

const sts = (over: Partial<TlsRptEvent> = {}): TlsRptEvent => ({
  domain: "example.com",
  policyType: "sts",
  policyString: ["version: STSv1", "mode: enforce", "mx: mx.example.com", "max_age: 86400"],
  mxHost: ["mx.example.com"],
  result: "success",
  mx: "mx.example.com",
  ip: "192.0.2.1",
  ...over,
});

async function gunzipJson(gz: Uint8Array): Promise<TlsRptReport> {
  const s = new Blob([gz as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return JSON.parse(await new Response(s).text());
}

interface Sent {
  posts: { url: string; report: TlsRptReport }[];
  mails: { from: string; to: string; message: string }[];
  lines: string[];
}

function io(
  store: ReportStore,
  txt: Record<string, string[][] | Error>,
  now: () => number,
  opts: { postStatus?: number; mailFails?: boolean } = {},
): ReportIo & { sent: Sent } {
  const sent: Sent = { posts: [], mails: [], lines: [] };
  return {
    sent,
    store,
    txt: (name) => {
      const v = txt[name];
      if (v instanceof Error) return Promise.reject(v);
      if (!v) return Promise.reject(new DnsError("notfound", name, "TXT", "Host not found"));
      return Promise.resolve(v);
    },
    post: async (url, body) => {
      sent.posts.push({ url, report: await gunzipJson(body) });
      return opts.postStatus ?? 200;
    },
    mail: (from, to, message) => {
      if (opts.mailFails) return Promise.reject(new Error("cleanup: 451 4.3.0 no"));
      sent.mails.push({ from, to, message });
      return Promise.resolve("4ABCD");
    },
    organization: "Sender Org",
    contact: "postmaster@sender.example",
    sender: "noreply@sender.example",
    submitter: "sender.example",
    myhostname: "mail.sender.example",
    now,
    log: { info: (m) => sent.lines.push(m), warn: (m) => sent.lines.push(`warning: ${m}`) },
  };
}

const RECORD = {
  "_smtp._tls.example.com": [["v=TLSRPTv1; rua=https://rpt.example.com/v1,mailto:tls@example.com"]],
};

async function withStores(fn: (store: ReportStore) => Promise<void>): Promise<void> {
  await fn(memoryReportStore());
  const dir = await Deno.makeTempDir({ prefix: "pw-tlsrpt-" });
  const kv = await Deno.openKv(`${dir}/r.kv`);
  try {
    await fn(kvReportStore(kv));
  } finally {
    kv.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("mtasts TLS-RPT reports", async (t) => {
  await t.step("counts per policy, sends after the day to https: and mailto:", async () => {
    await withStores(async (store) => {
      const day = utcDay(DAY1);
      for (let i = 0; i < 3; i++) await store.record(day, sts());
      await store.record(day, sts({ result: "certificate-expired", reason: "CERT_HAS_EXPIRED" }));
      await store.record(day, sts({ result: "certificate-expired", reason: "CERT_HAS_EXPIRED" }));
      await store.record(
        day,
        sts({ policyType: "tlsa", policyString: ["3 1 1 AB"], mxHost: undefined }),
      );
      let now = DAY1 + 3600_000;
      const x = io(store, RECORD, () => now);
      const sender = new ReportSender(x);
      // The day has not ended: nothing.
      await sender.sendDue();
      assertEquals([x.sent.posts.length, x.sent.mails.length], [0, 0]);
      now = DAY2;
      await sender.sendDue();
      assertEquals(x.sent.posts.map((p) => p.url), ["https://rpt.example.com/v1"]);
      const r = x.sent.posts[0].report;
      assertEquals(r["organization-name"], "Sender Org");
      assertEquals(r["report-id"], "2026-12-01.example.com@mail.sender.example");
      assertEquals(r["date-range"], {
        "start-datetime": "2026-12-01T00:00:00Z",
        "end-datetime": "2026-12-02T00:00:00Z",
      });
      const bySts = r.policies.find((p) => p.policy["policy-type"] === "sts")!;
      assertEquals(bySts.policy["mx-host"], ["mx.example.com"]);
      assertEquals(bySts.summary, {
        "total-successful-session-count": 3,
        "total-failure-session-count": 2,
      });
      assertEquals(bySts["failure-details"], [{
        "result-type": "certificate-expired",
        "receiving-mx-hostname": "mx.example.com",
        "receiving-ip": "192.0.2.1",
        "failed-session-count": 2,
        "failure-reason-code": "CERT_HAS_EXPIRED",
      }]);
      const byTlsa = r.policies.find((p) => p.policy["policy-type"] === "tlsa")!;
      assertEquals(byTlsa.policy["policy-string"], ["3 1 1 AB"]);
      assertEquals(byTlsa.summary["total-successful-session-count"], 1);
      // The mailed one: RFC 8460 5.3's headers and attachment.
      assertEquals(x.sent.mails.length, 1);
      const m = x.sent.mails[0];
      assertEquals([m.from, m.to], ["noreply@sender.example", "tls@example.com"]);
      assertMatch(m.message, /^TLS-Report-Domain: example\.com\r$/m);
      assertMatch(m.message, /^TLS-Report-Submitter: sender\.example\r$/m);
      assertMatch(m.message, /^Content-Type: multipart\/report; report-type="tlsrpt"/m);
      assertMatch(
        m.message,
        /filename="sender\.example!example\.com!1796083200!1796169600\.json\.gz"/,
      );
      const b64 = m.message.split("Content-Disposition")[1].split("\r\n\r\n")[1].split("\r\n--")[0];
      const gz = Uint8Array.from(atob(b64.replaceAll("\r\n", "")), (c) => c.charCodeAt(0));
      assertEquals(await gunzipJson(gz), r);
      // Sent: the counters are gone.
      assertEquals(await store.pending("2026-12-03"), []);
      await sender.sendDue();
      assertEquals(x.sent.posts.length, 1);
    });
  });

  await t.step("no TLSRPT record: dropped; a DNS error: postponed", async () => {
    await withStores(async (store) => {
      await store.record(utcDay(DAY1), sts());
      await store.record(utcDay(DAY1), sts({ domain: "later.example" }));
      const x = io(store, {
        "_smtp._tls.later.example": new DnsError("temporary", "x", "TXT", "try again"),
      }, () => DAY2);
      await new ReportSender(x).sendDue();
      assertEquals(x.sent.posts.length + x.sent.mails.length, 0);
      assertEquals((await store.pending("2026-12-03")).map((d) => d.domain), ["later.example"]);
      assertMatch(x.sent.lines.join("\n"), /later\.example \(2026-12-01\) postponed/);
    });
  });

  await t.step("a failed destination is retried alone, then given up", async () => {
    await withStores(async (store) => {
      await store.record(utcDay(DAY1), sts());
      let now = DAY2;
      const x = io(store, RECORD, () => now, { mailFails: true });
      const sender = new ReportSender(x);
      await sender.sendDue();
      assertEquals(x.sent.posts.length, 1);
      const [left] = await store.pending("2026-12-03");
      assertEquals(left.sent, ["https://rpt.example.com/v1"]);
      await sender.sendDue();
      assertEquals(x.sent.posts.length, 1); // not posted again
      now = DAY2 + 3 * 86_400_000;
      await sender.sendDue();
      assertEquals(await store.pending("2026-12-09"), []);
      assertMatch(
        x.sent.lines.join("\n"),
        /warning: TLS report for example\.com \(2026-12-01\) given up/,
      );
    });
  });

  await t.step("an https: destination that answers other than 2xx has failed", async () => {
    await withStores(async (store) => {
      await store.record(utcDay(DAY1), sts());
      const x = io(store, RECORD, () => DAY2, { postStatus: 500 });
      await new ReportSender(x).sendDue();
      assertMatch(x.sent.lines.join("\n"), /to https:\/\/rpt\.example\.com\/v1: HTTP status 500/);
      assertEquals((await store.pending("2026-12-03"))[0].sent, ["mailto:tls@example.com"]);
    });
  });

  await t.step("events from a client are checked before they are counted", async () => {
    const store = memoryReportStore();
    assertEquals(await recordEvent(store, { op: "tlsrpt", event: sts() }, DAY1), { status: "ok" });
    for (
      const bad of [
        sts({ domain: "Example.COM" }),
        sts({ domain: "a b.example" }),
        sts({ result: "bogus" as TlsRptEvent["result"] }),
        sts({ ip: "not-an-address" }),
        sts({ reason: "line\r\nInjected: header" }),
        sts({ policyString: Array(51).fill("x") }),
        { ...sts(), policyType: "dkim" },
        null,
      ]
    ) {
      const r = await recordEvent(store, { op: "tlsrpt", event: bad }, DAY1);
      assertEquals(r.status, "error", JSON.stringify(bad));
    }
    const [d] = await store.pending("2026-12-02");
    assertEquals(d.policies[0].successfulSessionCount, 1);
    assert(d.policies[0].failures.length === 0);
  });
});
