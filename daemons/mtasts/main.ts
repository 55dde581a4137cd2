/**
 * NAME
 *   mtasts - MTA-STS policy service for the SMTP client
 * SUMMARY
 *   Answers the smtp delivery agent's question "which MTA-STS policy
 *   (RFC 8461) applies to mail for this domain?" over lib/ipc, one JSON
 *   message each way: `{ domain }`, answered `{ status: "ok", policy:
 *   { mode, mx, maxAge } | null, source }` or `{ status: "error", text }`.
 *   policy.ts decides from the "_mta-sts" TXT record, the cache and a
 *   fetch of "https://mta-sts.<domain>/.well-known/mta-sts.txt". Postfix
 *   has no such daemon (sites run postfix-mta-sts-resolver behind
 *   smtp_tls_policy_maps); its job is the same. Started on demand, exits
 *   after max_idle.
 *
 *   It also collects SMTP TLS Reporting events (RFC 8460) from smtp with
 *   smtp_tlsrpt_enable = yes (`{ op: "tlsrpt", event }`, reports.ts) and
 *   sends the daily reports when master wakes it (`{ op: "wakeup" }`,
 *   master.cf's wakeup field) and when it starts: Postfix hands the same
 *   events to sys4's tlsrpt-reporter, a collector and report generator of
 *   its own.
 * PARAMETERS
 *   postwarden_mta_sts_cache ($data_directory/mta_sts.kv): the policy
 *   cache, a Deno KV database (a store that cannot be opened is logged,
 *   and policies are then fetched for every question).
 *   postwarden_mta_sts_CAfile (/etc/ssl/certs/ca-certificates.crt): CA
 *   certificates trusted for the policy servers besides Deno's own roots.
 *   postwarden_tlsrpt_organization ($mydomain), postwarden_tlsrpt_contact
 *   (postmaster@$mydomain), postwarden_tlsrpt_sender
 *   (noreply-smtp-tls-reporting@$mydomain), postwarden_tlsrpt_submitter
 *   ($mydomain): what the reports say about their sender.
 * SANDBOX
 *   The name servers of resolv.conf (the TXT record, the policy host's
 *   addresses), port 443 of any IPv4 address and nothing else on the
 *   network (lib/mtasts address_fetch.ts connects to the address and
 *   checks the certificate against the policy host name: Deno cannot
 *   grant "any host name, port 443"; reports to https: URIs go the same
 *   way), its cache files and the CA file; cleanup's socket with
 *   smtp_tlsrpt_enable (mailed reports). No queue, no configuration, no
 *   other daemon's socket.
 *
 * Not done: IPv6 policy and report servers (Deno cannot grant an IPv6
 * range), https: report URIs on a port other than 443, refreshing policies
 * before they expire.
 */
import { fetchStsPolicy, isDomainName } from "../../lib/mtasts/mod.ts";
import { addressFetch } from "../../lib/mtasts/address_fetch.ts";
import { timedResolver } from "../../lib/dns/mod.ts";
import type { IpcConn } from "../../lib/ipc/mod.ts";
import { pemBlocks } from "../../lib/tls/material.ts";
import { runService, type ServiceContext } from "../../lib/service/mod.ts";
import { type PolicyAnswer, PolicyResolver, type PolicyStore } from "./policy.ts";
import { kvStore, memoryStore } from "./store.ts";
import {
  kvReportStore,
  memoryReportStore,
  ReportSender,
  type ReportStore,
  utcDay,
} from "./reports.ts";
import { tlsRptEvent } from "../../lib/mtasts/mod.ts";
import { submitMessage } from "../../lib/cleanup/client.ts";

/** The whole policy fetch, connection to body. */
const FETCH_TIMEOUT_MS = 10_000;
/** Each DNS lookup. */
const DNS_TIMEOUT_MS = 10_000;

/** The reply to one request. */
export type MtaStsReply =
  | { status: "ok"; policy: PolicyAnswer["policy"]; source: PolicyAnswer["source"] }
  | { status: "error"; text: string };

/** Answers one request. */
export async function answer(
  resolver: Pick<PolicyResolver, "policyFor">,
  msg: Record<string, unknown>,
): Promise<MtaStsReply> {
  const d = msg.domain;
  if (typeof d !== "string") return { status: "error", text: "bad request" };
  const domain = d.toLowerCase().replace(/\.$/, "");
  if (!isDomainName(domain)) return { status: "error", text: "not a domain name" };
  const a = await resolver.policyFor(domain);
  return { status: "ok", policy: a.policy, source: a.source };
}

/** The daemon's parts: policies, and the TLS report counters and sender. */
interface Parts {
  resolver: PolicyResolver;
  reports: ReportStore;
  sender: ReportSender;
  /** Report sending under way, waited for at exit. */
  sending: Set<Promise<void>>;
  /** When due reports were last looked for. */
  lastSend: number;
}

/** A busy daemon looks for due reports this often even when master does not wake it. */
const SEND_EVERY_MS = 3600_000;

/** Records one TLS-RPT event (reports.ts). */
export async function recordEvent(
  store: ReportStore,
  msg: Record<string, unknown>,
  now = Date.now(),
): Promise<{ status: "ok" } | { status: "error"; text: string }> {
  const e = tlsRptEvent(msg.event);
  if (!e) return { status: "error", text: "bad TLS-RPT event" };
  await store.record(utcDay(now), e);
  return { status: "ok" };
}

function sendReports(parts: Parts, ctx: ServiceContext): void {
  parts.lastSend = Date.now();
  const p = parts.sender.sendDue().catch((e) =>
    ctx.log.warn(`TLS reports: ${(e as Error).message}`)
  );
  parts.sending.add(p);
  p.finally(() => parts.sending.delete(p));
}

async function serve(parts: Parts, conn: IpcConn, ctx: ServiceContext) {
  for (;;) {
    const f = await conn.recv(3600_000);
    if (f === null) return;
    if (f.kind !== "msg") {
      ctx.log.warn("unexpected content frame from client; closing");
      return;
    }
    let reply: Record<string, unknown>;
    if (f.msg.op === "wakeup") {
      sendReports(parts, ctx);
      reply = { status: "ok" };
    } else if (f.msg.op === "tlsrpt") {
      reply = await recordEvent(parts.reports, f.msg).catch((e) => ({
        status: "error",
        text: `cannot record: ${(e as Error).message}`,
      }));
      if (Date.now() - parts.lastSend > SEND_EVERY_MS) sendReports(parts, ctx);
    } else reply = await answer(parts.resolver, f.msg);
    if (reply.status === "error") {
      ctx.log.warn(`bad request: ${JSON.stringify(f.msg).slice(0, 200)}: ${reply.text}`);
    }
    await conn.send(reply);
  }
}

async function caCerts(path: string, ctx: ServiceContext): Promise<string[]> {
  if (!path) return [];
  try {
    return pemBlocks(await Deno.readTextFile(path)).filter((b) => b.label === "CERTIFICATE")
      .map((b) => b.pem);
  } catch (e) {
    ctx.log.warn(`postwarden_mta_sts_CAfile ${path}: ${(e as Error).message}`);
    return [];
  }
}

if (import.meta.main) {
  let parts: Parts;
  await runService({
    program: "mtasts",
    init: async (ctx) => {
      const dns = timedResolver(DNS_TIMEOUT_MS);
      const cfg = ctx.config;
      const cachePath = cfg.str("postwarden_mta_sts_cache").trim();
      let store: PolicyStore;
      let reports: ReportStore;
      try {
        const kv = await kvStore(cachePath);
        ctx.signal.addEventListener("abort", () => kv.close());
        store = kv;
        reports = kvReportStore(kv.kv);
      } catch (e) {
        ctx.log.warn(`postwarden_mta_sts_cache ${cachePath}: ${(e as Error).message}`);
        store = memoryStore();
        reports = memoryReportStore();
      }
      const fetch = addressFetch({
        resolve: (host) => dns.resolveA(host),
        caCerts: await caCerts(cfg.str("postwarden_mta_sts_CAfile").trim(), ctx),
      });
      const resolver = new PolicyResolver({
        txt: (name) => dns.resolveTxt(name),
        fetch: (domain) =>
          fetchStsPolicy(domain, {
            fetch: fetch as typeof globalThis.fetch,
            timeoutMs: FETCH_TIMEOUT_MS,
          }),
        store,
        log: ctx.log,
      });
      const sender = new ReportSender({
        store: reports,
        txt: (name) => dns.resolveTxt(name),
        post: async (url, body) => {
          const r = await fetch(url, {
            method: "POST",
            body: body as Uint8Array<ArrayBuffer>,
            headers: { "content-type": "application/tlsrpt+gzip" },
            signal: AbortSignal.timeout(FETCH_TIMEOUT_MS * 3),
          });
          await r.body?.cancel();
          return r.status;
        },
        mail: (from, to, message) =>
          submitMessage(ctx.peer("cleanup"), async (session) => {
            session.envelope({
              sender: from,
              recipients: [{ address: to, notify: ["NEVER"] }],
              attrs: { origin: "mtasts" },
            });
            await session.write(new TextEncoder().encode(message));
          }, { timeoutMs: FETCH_TIMEOUT_MS * 6 }),
        organization: cfg.str("postwarden_tlsrpt_organization").trim(),
        contact: cfg.str("postwarden_tlsrpt_contact").trim(),
        sender: cfg.str("postwarden_tlsrpt_sender").trim(),
        submitter: cfg.str("postwarden_tlsrpt_submitter").trim(),
        myhostname: cfg.str("myhostname"),
        log: ctx.log,
      });
      parts = { resolver, reports, sender, sending: new Set(), lastSend: 0 };
      // Reports that fell due while nothing woke the daemon.
      sendReports(parts, ctx);
    },
    onIpc: (conn, ctx) => serve(parts, conn, ctx),
    stop: async () => {
      await Promise.allSettled([...parts.sending]);
    },
  });
}
