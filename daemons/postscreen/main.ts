/**
 * NAME
 *   postscreen - zombie blocker in front of smtpd
 * SUMMARY
 *   Listens on the SMTP port in smtpd's place and screens each client
 *   before any smtpd work is spent on it (screen.ts: the access list, the
 *   cache, the greeting test and the weighted DNS lists), as Postfix's
 *   postscreen(8). A client that passes is handed to the smtpd "pass"
 *   service named by smtpd_service_name (master.cf
 *   `smtpd pass - - n - - smtpd`).
 *
 *   Postfix passes the client's socket to smtpd; a Deno process cannot
 *   pass a socket, so postscreen connects to smtpd's UNIX socket, writes a
 *   PROXY protocol v1 header naming the client and the address it
 *   reached, and then copies bytes both ways until either side closes.
 *   smtpd reads the header as it reads haproxy's, so its logs, Received:
 *   headers and restrictions see the real client. The cost is one more
 *   copy of every byte in postscreen (docs/postscreen.md has the figures).
 * PARAMETERS
 *   See settings.ts; postscreen_* and smtpd_service_name, mynetworks for
 *   permit_mynetworks, myhostname.
 * SANDBOX
 *   Its port; DNS (when postscreen_dnsbl_sites is set); the smtpd pass
 *   socket; the cache's KV file; its access tables. No queue folder.
 */
import { type FullResolver, systemResolver } from "../../lib/dns/mod.ts";
import { matchNetworkList } from "../../lib/config/network_list.ts";
import { addressQuery } from "../../lib/config/restrictions.ts";
import { splitMapList } from "../../lib/maps/mod.ts";
import type { Maps } from "../../lib/maps/mod.ts";
import { runService, type ServiceContext } from "../../lib/service/mod.ts";
import { kvCache, memoryCache, type ScreenCache } from "./cache.ts";
import { ChunkReader, type DnsblScore, screen } from "./screen.ts";
import { type DnsblSite, type ScreenSettings, screenSettings } from "./settings.ts";

let settings: ScreenSettings;
let cache: ScreenCache;
let tables: { spec: string; maps: Promise<Maps> }[] = [];
/**
 * DNS for the lists: without confirming negative answers over TCP, as
 * smtpd's deny lists (daemons/smtpd/dnsbl.ts): NXDOMAIN and SERVFAIL both
 * add no weight, and every clean client gets NXDOMAIN from every list.
 */
let resolver: FullResolver;
/** Connections being screened, in all and per client address. */
let screening = 0;
const perClient = new Map<string, number>();

/** Whether one site lists the address (its A records, through its filter). */
async function listedBy(site: DnsblSite, addr: string): Promise<boolean> {
  const q = addressQuery(addr, site.domain);
  if (q === null) return false;
  let answers: string[];
  try {
    answers = await resolver.resolveA(q);
  } catch {
    return false; // not listed, or the list cannot say now: no weight either way
  }
  if (!site.filter) return answers.length > 0;
  return answers.some((a) => {
    const o = a.split(".").map(Number);
    return o.length === 4 && site.filter!.every((m, i) => m(o[i]));
  });
}

/** The weighted score of an address over postscreen_dnsbl_sites, within the DNSBL time limit. */
async function dnsblScore(addr: string): Promise<DnsblScore> {
  const sites = settings.dnsblSites;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<boolean[]>((res) =>
    timer = setTimeout(() => res(sites.map(() => false)), settings.dnsblTimeoutMs)
  );
  const hits = await Promise.race([Promise.all(sites.map((s) => listedBy(s, addr))), limit]);
  clearTimeout(timer);
  const listed = sites.filter((_, i) => hits[i]).sort((a, b) => b.weight - a.weight);
  return {
    score: listed.reduce((n, s) => n + s.weight, 0),
    listedBy: listed.filter((s) => s.weight > 0).map((s) => s.domain),
  };
}

/** postscreen_access_list: the first item that decides. */
async function accessFor(addr: string, ctx: ServiceContext): Promise<"permit" | "reject" | null> {
  let t = 0;
  for (const item of settings.accessList) {
    if (item.kind === "mynetworks") {
      if (matchNetworkList(settings.mynetworks, { addr }) === true) return "permit";
      continue;
    }
    try {
      const v = (await (await tables[t++].maps).find(addr))?.trim().toLowerCase();
      if (v === undefined || v.startsWith("dunno")) continue;
      if (v.startsWith("permit")) return "permit";
      if (v.startsWith("reject")) return "reject";
      ctx.log.warn(`postscreen_access_list: ${item.spec}: unknown result "${v}" for ${addr}`);
    } catch (e) {
      // A table that cannot answer decides nothing; the tests still run.
      ctx.log.warn(`postscreen_access_list: ${item.spec}: ${(e as Error).message}`);
    }
  }
  return null;
}

/**
 * Copies `from` to `to` until `from` ends, then ends `to`'s writing side;
 * `first` and the read `inflight` on `from` go before the rest.
 */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  first: Uint8Array[] = [],
  inflight: Promise<Uint8Array | null> | null = null,
): Promise<void> {
  const buf = new Uint8Array(64 * 1024);
  try {
    for (const b of first) await writeAll(to, b);
    const b = inflight ? await inflight : undefined;
    if (b === null) throw new Error("client gone");
    if (b) await writeAll(to, b);
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
  } catch {
    // either side went away
  }
  try {
    await to.closeWrite();
  } catch {
    // closed
  }
}

async function writeAll(c: Deno.Conn, b: Uint8Array): Promise<void> {
  for (let off = 0; off < b.length;) off += await c.write(b.subarray(off));
}

/** The PROXY protocol v1 header for smtpd (haproxy.ts reads it). */
export function proxyHeader(client: Deno.NetAddr, server: Deno.NetAddr): string {
  const v6 = client.hostname.includes(":") || server.hostname.includes(":");
  return `PROXY ${
    v6 ? "TCP6" : "TCP4"
  } ${client.hostname} ${server.hostname} ${client.port} ${server.port}\r\n`;
}

async function onConnection(conn: Deno.TcpConn, ctx: ServiceContext): Promise<void> {
  const client = conn.remoteAddr;
  const server = conn.localAddr;
  const who = `[${client.hostname}]:${client.port}`;
  const write = async (s: string) => await writeAll(conn, new TextEncoder().encode(s));
  const count = (perClient.get(client.hostname) ?? 0) + 1;
  screening++;
  perClient.set(client.hostname, count);
  // The limits count clients being screened, not those handed to smtpd.
  let counted = true;
  const release = () => {
    if (!counted) return;
    counted = false;
    screening--;
    const n = (perClient.get(client.hostname) ?? 1) - 1;
    if (n <= 0) perClient.delete(client.hostname);
    else perClient.set(client.hostname, n);
  };
  try {
    ctx.log.info(`CONNECT from ${who} to [${server.hostname}]:${server.port}`);
    const limit = settings.clientConnectionLimit;
    if (screening > settings.preQueueLimit || (limit > 0 && count > limit)) {
      ctx.log.info(`NOQUEUE: reject: CONNECT from ${who}: too many connections`);
      await write("421 4.7.0 Error: too many connections\r\n").catch(() => {});
      return;
    }
    conn.setNoDelay(true);
    const reader = new ChunkReader(async () => {
      const b = new Uint8Array(8192);
      const n = await conn.read(b);
      return n === null ? null : b.subarray(0, n);
    });
    const outcome = await screen({ addr: client.hostname, port: client.port }, reader, write, {
      settings,
      cache,
      dnsbl: dnsblScore,
      access: (addr) => accessFor(addr, ctx),
      info: (m) => ctx.log.info(m),
      myhostname: ctx.config.str("myhostname"),
      now: Date.now,
    });
    if (outcome.kind === "done") return;
    release();
    let smtpd: Deno.UnixConn;
    try {
      smtpd = await Deno.connect({
        transport: "unix",
        path: ctx.queue.privateSocket(settings.smtpdService),
      });
    } catch (e) {
      ctx.log.warn(`cannot connect to service ${settings.smtpdService}: ${(e as Error).message}`);
      await write("421 4.3.2 Service currently unavailable\r\n").catch(() => {});
      return;
    }
    try {
      await writeAll(smtpd, new TextEncoder().encode(proxyHeader(client, server)));
      // What the client sent during the tests, then a read still in flight, go first.
      await Promise.all([
        pump(conn, smtpd, outcome.early, reader.takePending()),
        pump(smtpd, conn),
      ]);
    } finally {
      smtpd.close();
    }
  } finally {
    release();
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

if (import.meta.main) {
  await runService({
    program: "postscreen",
    init: async (ctx) => {
      settings = screenSettings(ctx.config);
      const dns = systemResolver({ timeoutMs: settings.dnsblTimeoutMs });
      resolver = dns.unconfirmed ?? dns;
      tables = settings.accessList.filter((i) => i.kind === "table").map((i) => ({
        spec: i.spec,
        maps: ctx.maps("postscreen_access_list", splitMapList(i.spec).join(" ")),
      }));
      cache = settings.cachePath
        ? await kvCache(
          settings.cachePath,
          settings.cacheRetentionMs,
          (m) => ctx.log.warn(m),
        ).catch((e) => {
          ctx.log.warn(`postscreen_cache_map: ${(e as Error).message}; clients are not remembered`);
          return memoryCache();
        })
        : memoryCache();
    },
    onInet: onConnection,
    stop: () => cache?.close(),
  });
}
