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
 * PARAMETERS
 *   postwarden_mta_sts_cache ($data_directory/mta_sts.kv): the policy
 *   cache, a Deno KV database (a store that cannot be opened is logged,
 *   and policies are then fetched for every question).
 *   postwarden_mta_sts_CAfile (/etc/ssl/certs/ca-certificates.crt): CA
 *   certificates trusted for the policy servers besides Deno's own roots.
 * SANDBOX
 *   The name servers of resolv.conf (the TXT record, the policy host's
 *   addresses), port 443 of any IPv4 address and nothing else on the
 *   network (lib/mtasts address_fetch.ts connects to the address and
 *   checks the certificate against the policy host name: Deno cannot
 *   grant "any host name, port 443"), its cache files and the CA file. No
 *   queue, no configuration, no other daemon's socket.
 *
 * Not done: IPv6 policy servers (Deno cannot grant an IPv6 range), TLS-RPT
 * reports, refreshing policies before they expire.
 */
import { fetchStsPolicy, isDomainName } from "../../lib/mtasts/mod.ts";
import { addressFetch } from "../../lib/mtasts/address_fetch.ts";
import { timedResolver } from "../../lib/dns/mod.ts";
import type { IpcConn } from "../../lib/ipc/mod.ts";
import { pemBlocks } from "../../lib/tls/material.ts";
import { runService, type ServiceContext } from "../../lib/service/mod.ts";
import { type PolicyAnswer, PolicyResolver, type PolicyStore } from "./policy.ts";
import { kvStore, memoryStore } from "./store.ts";

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

async function serve(resolver: PolicyResolver, conn: IpcConn, ctx: ServiceContext) {
  for (;;) {
    const f = await conn.recv(3600_000);
    if (f === null) return;
    if (f.kind !== "msg") {
      ctx.log.warn("unexpected content frame from client; closing");
      return;
    }
    const reply = await answer(resolver, f.msg);
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
  let resolver: PolicyResolver;
  await runService({
    program: "mtasts",
    init: async (ctx) => {
      const dns = timedResolver(DNS_TIMEOUT_MS);
      const cachePath = ctx.config.str("postwarden_mta_sts_cache").trim();
      let store: PolicyStore;
      try {
        const kv = await kvStore(cachePath);
        ctx.signal.addEventListener("abort", () => kv.close());
        store = kv;
      } catch (e) {
        ctx.log.warn(`postwarden_mta_sts_cache ${cachePath}: ${(e as Error).message}`);
        store = memoryStore();
      }
      const fetch = addressFetch({
        resolve: (host) => dns.resolveA(host),
        caCerts: await caCerts(ctx.config.str("postwarden_mta_sts_CAfile").trim(), ctx),
      }) as typeof globalThis.fetch;
      resolver = new PolicyResolver({
        txt: (name) => dns.resolveTxt(name),
        fetch: (domain) => fetchStsPolicy(domain, { fetch, timeoutMs: FETCH_TIMEOUT_MS }),
        store,
        log: ctx.log,
      });
    },
    onIpc: (conn, ctx) => serve(resolver, conn, ctx),
  });
}
