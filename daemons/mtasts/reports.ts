/**
 * SMTP TLS Reporting (RFC 8460) in the mtasts daemon: the counters of the
 * TLS sessions the SMTP client reports (smtp_tlsrpt_enable; one
 * {@link TlsRptEvent} per session to a domain under an MTA-STS or DANE
 * policy), kept per UTC day, policy domain and policy, and the daily
 * aggregate report sent to each domain that asks for one.
 *
 * - {@link ReportStore.record} adds an event to its day's counters (Deno
 *   KV sums: concurrent smtp processes never lose a count).
 * - {@link ReportSender.sendDue}, on master's wake-up (master.cf's wakeup
 *   field on the mtasts line) and once at start: for each domain with
 *   counters of a day that has ended, the "_smtp._tls" TXT record says
 *   where the report goes. None: the counters are dropped. Otherwise the
 *   report (lib/mtasts tlsRptReport, gzipped) goes to each rua URI: https:
 *   by POST (section 5.4; a 2xx status is success), mailto: as a message
 *   (section 5.3) through the cleanup service, from
 *   postwarden_tlsrpt_sender, DKIM-signed by cleanup when that domain has
 *   a key. A URI that fails is tried again at the next wake-up; a DNS
 *   error postpones the domain; two days after its day ended a report
 *   that could not be sent everywhere is given up, with a warning.
 *
 * The report's identity comes from postwarden_tlsrpt_organization and
 * postwarden_tlsrpt_contact; its id is "<day>.<domain>@<myhostname>", the
 * same for every attempt, so a receiver can drop duplicates.
 *
 * @module
 */
import {
  gzipReport,
  mailtoAddress,
  parseTlsRptRecord,
  reportMessage,
  type TlsRptEvent,
  type TlsRptPolicyCounters,
  tlsRptReport,
  type TlsRptResultType,
} from "../../lib/mtasts/mod.ts";
import { DnsError } from "../../lib/dns/mod.ts";
import { messageIdStamp, rfc2822Date } from "../../lib/mime/mod.ts";

/** The UTC day of a time: "2026-12-03". */
export function utcDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

const DAY_MS = 86_400_000;
/** How long after its day a report is tried. */
const GIVE_UP_MS = 2 * DAY_MS;

/** One day's counters for one policy domain. */
export interface DayCounters {
  day: string;
  domain: string;
  policies: TlsRptPolicyCounters[];
  /** rua URIs already sent this report. */
  sent: string[];
}

/** Where the counters are kept (Deno KV in the daemon, memory in tests). */
export interface ReportStore {
  record(day: string, e: TlsRptEvent): Promise<void>;
  /** Every day and domain with counters, days before `before` only. */
  pending(before: string): Promise<DayCounters[]>;
  markSent(day: string, domain: string, uri: string): Promise<void>;
  drop(day: string, domain: string): Promise<void>;
}

/** A failure's identity within its policy's counters. */
type FailureKey = [TlsRptResultType, string, string, string];

function failureKey(e: TlsRptEvent): FailureKey {
  return [e.result as TlsRptResultType, e.mx, e.ip, e.reason ?? ""];
}

/** The counters of the KV entries under one day and domain, as the report wants them. */
class Collector {
  #policies = new Map<string, TlsRptPolicyCounters>();
  sent: string[] = [];

  policy(type: "sts" | "tlsa", domain: string): TlsRptPolicyCounters {
    let p = this.#policies.get(type);
    if (!p) {
      p = { policyType: type, policyDomain: domain, successfulSessionCount: 0, failures: [] };
      this.#policies.set(type, p);
    }
    return p;
  }

  add(type: "sts" | "tlsa", domain: string, key: readonly unknown[], n: number): void {
    const p = this.policy(type, domain);
    if (key[0] === "ok") {
      p.successfulSessionCount += n;
      return;
    }
    const [, result, mx, ip, reason] = key as [string, TlsRptResultType, string, string, string];
    p.failures.push({
      resultType: result,
      failedSessionCount: n,
      receivingMxHostname: mx,
      receivingIp: ip,
      ...(reason ? { failureReasonCode: reason } : {}),
    });
  }

  get policies(): TlsRptPolicyCounters[] {
    return [...this.#policies.values()];
  }
}

/** A store in memory (tests, and when the KV database cannot be opened). */
export function memoryReportStore(): ReportStore {
  // day \0 domain -> type -> { policy, counts by key }
  const days = new Map<
    string,
    {
      policies: Map<
        "sts" | "tlsa",
        { lines: string[]; mx?: string[]; counts: Map<string, number> }
      >;
      sent: string[];
    }
  >();
  return {
    record(day, e) {
      const k = `${day}\0${e.domain}`;
      let d = days.get(k);
      if (!d) days.set(k, d = { policies: new Map(), sent: [] });
      let p = d.policies.get(e.policyType);
      if (!p) d.policies.set(e.policyType, p = { lines: [], counts: new Map() });
      p.lines = e.policyString;
      p.mx = e.mxHost;
      const key = JSON.stringify(e.result === "success" ? ["ok"] : ["fail", ...failureKey(e)]);
      p.counts.set(key, (p.counts.get(key) ?? 0) + 1);
      return Promise.resolve();
    },
    pending(before) {
      const out: DayCounters[] = [];
      for (const [k, d] of days) {
        const [day, domain] = k.split("\0");
        if (day >= before) continue;
        const c = new Collector();
        for (const [type, p] of d.policies) {
          const pol = c.policy(type, domain);
          pol.policyString = p.lines;
          if (p.mx) pol.mxHost = p.mx;
          for (const [key, n] of p.counts) c.add(type, domain, JSON.parse(key), n);
        }
        out.push({ day, domain, policies: c.policies, sent: [...d.sent] });
      }
      return Promise.resolve(out);
    },
    markSent(day, domain, uri) {
      days.get(`${day}\0${domain}`)?.sent.push(uri);
      return Promise.resolve();
    },
    drop(day, domain) {
      days.delete(`${day}\0${domain}`);
      return Promise.resolve();
    },
  };
}

/**
 * The store in a Deno KV database (the policy cache's): keys under
 * ["tlsrpt", day, domain, type]: "policy" (its lines), ["ok"] and
 * ["fail", result, mx, ip, reason] (KvU64 sums); ["tlsrpt-sent", day,
 * domain, uri] marks a URI done. The policy lines and the marks expire a
 * few days after their day; the sums cannot be given an expiry, and go
 * when the report is sent, dropped or given up.
 */
export function kvReportStore(kv: Deno.Kv): ReportStore {
  const expireIn = GIVE_UP_MS + 2 * DAY_MS;
  return {
    async record(day, e) {
      const base = ["tlsrpt", day, e.domain, e.policyType];
      const count = e.result === "success" ? [...base, "ok"] : [...base, "fail", ...failureKey(e)];
      await kv.atomic()
        .sum(count, 1n)
        .set([...base, "policy"], { lines: e.policyString, mx: e.mxHost ?? null }, { expireIn })
        .commit();
    },
    async pending(before) {
      const byDay = new Map<string, Collector>();
      for await (const entry of kv.list({ prefix: ["tlsrpt"] })) {
        const [, day, domain, type, ...rest] = entry.key as string[];
        if (typeof day !== "string" || day >= before) continue;
        if (type !== "sts" && type !== "tlsa") continue;
        const k = `${day}\0${domain}`;
        let c = byDay.get(k);
        if (!c) byDay.set(k, c = new Collector());
        if (rest[0] === "policy") {
          const v = entry.value as { lines?: unknown; mx?: unknown };
          const p = c.policy(type, domain);
          if (Array.isArray(v?.lines)) p.policyString = v.lines as string[];
          if (Array.isArray(v?.mx)) p.mxHost = v.mx as string[];
        } else if (entry.value instanceof Deno.KvU64) {
          c.add(type, domain, rest, Number(entry.value.value));
        }
      }
      const out: DayCounters[] = [];
      for (const [k, c] of byDay) {
        const [day, domain] = k.split("\0");
        const sent: string[] = [];
        for await (const s of kv.list({ prefix: ["tlsrpt-sent", day, domain] })) {
          sent.push(String(s.key[3]));
        }
        out.push({ day, domain, policies: c.policies, sent });
      }
      return out;
    },
    async markSent(day, domain, uri) {
      await kv.set(["tlsrpt-sent", day, domain, uri], true, { expireIn });
    },
    async drop(day, domain) {
      for (const prefix of [["tlsrpt", day, domain], ["tlsrpt-sent", day, domain]]) {
        for await (const e of kv.list({ prefix })) await kv.delete(e.key);
      }
    },
  };
}

/** What sending needs from the outside. */
export interface ReportIo {
  store: ReportStore;
  /** TXT records of a name; DnsError "notfound" when there are none. */
  txt(name: string): Promise<string[][]>;
  /** HTTPS POST of the gzipped report; resolves to the status. */
  post(url: string, body: Uint8Array): Promise<number>;
  /** Queues a message through cleanup; resolves to its queue id. */
  mail(from: string, to: string, message: string): Promise<string>;
  organization: string;
  contact: string;
  /** The envelope and From: address of mailed reports. */
  sender: string;
  /** TLS-Report-Submitter and the file name's first part. */
  submitter: string;
  myhostname: string;
  now?: () => number;
  log: { info(m: string): void; warn(m: string): void };
}

/** Sends the reports that are due; one per daemon. */
export class ReportSender {
  #running: Promise<void> | null = null;
  constructor(readonly io: ReportIo) {}

  /** Sends what is due; a call while one runs waits for that one. */
  sendDue(): Promise<void> {
    this.#running ??= this.#sendDue().finally(() => this.#running = null);
    return this.#running;
  }

  async #sendDue(): Promise<void> {
    const now = (this.io.now ?? Date.now)();
    for (const d of await this.io.store.pending(utcDay(now))) {
      try {
        await this.#sendOne(d, now);
      } catch (e) {
        this.io.log.warn(`TLS report for ${d.domain} (${d.day}): ${(e as Error).message}`);
      }
    }
  }

  async #sendOne(d: DayCounters, now: number): Promise<void> {
    const { io } = this;
    const start = new Date(`${d.day}T00:00:00Z`);
    const end = new Date(start.getTime() + DAY_MS);
    const late = now - end.getTime() > GIVE_UP_MS;
    let txts: string[][];
    try {
      txts = await io.txt(`_smtp._tls.${d.domain}`);
    } catch (e) {
      if (!(e instanceof DnsError) || e.kind !== "notfound") {
        if (late) await this.#giveUp(d, `cannot look up _smtp._tls.${d.domain}`);
        else {io.log.info(
            `TLS report for ${d.domain} (${d.day}) postponed: ${(e as Error).message}`,
          );}
        return;
      }
      txts = [];
    }
    const record = parseTlsRptRecord(txts);
    if (!record) {
      await io.store.drop(d.day, d.domain);
      return;
    }
    const reportId = `${d.day}.${d.domain}@${io.myhostname}`;
    const gz = await gzipReport(tlsRptReport({
      organizationName: io.organization,
      contactInfo: io.contact,
      reportId,
      start,
      end,
      policies: d.policies,
    }));
    let failed = 0;
    for (const uri of record.rua) {
      if (d.sent.includes(uri)) continue;
      try {
        const where = await this.#deliver(uri, d, { reportId, start, end, gz, now });
        await io.store.markSent(d.day, d.domain, uri);
        io.log.info(`TLS report for ${d.domain} (${d.day}) sent to ${uri}: ${where}`);
      } catch (e) {
        failed++;
        io.log.warn(`TLS report for ${d.domain} (${d.day}) to ${uri}: ${(e as Error).message}`);
      }
    }
    if (failed === 0) await io.store.drop(d.day, d.domain);
    else if (late) await this.#giveUp(d, `${failed} destination(s) failed`);
  }

  async #deliver(
    uri: string,
    d: DayCounters,
    r: { reportId: string; start: Date; end: Date; gz: Uint8Array; now: number },
  ): Promise<string> {
    const { io } = this;
    if (/^https:/i.test(uri)) {
      const status = await io.post(uri, r.gz);
      if (status < 200 || status > 299) throw new Error(`HTTP status ${status}`);
      return `HTTP status ${status}`;
    }
    const to = mailtoAddress(uri);
    if (!to) throw new Error("not a usable mailto: address");
    const date = new Date(r.now);
    const message = reportMessage({
      from: io.sender,
      to,
      submitter: io.submitter,
      domain: d.domain,
      reportId: r.reportId,
      start: r.start,
      end: r.end,
      gz: r.gz,
      date: rfc2822Date(date),
      messageId: `${messageIdStamp(date)}.tlsrpt.${d.domain}@${io.myhostname}`,
    });
    return `queued as ${await io.mail(io.sender, to, message)}`;
  }

  async #giveUp(d: DayCounters, why: string): Promise<void> {
    this.io.log.warn(`TLS report for ${d.domain} (${d.day}) given up: ${why}`);
    await this.io.store.drop(d.day, d.domain);
  }
}
