/**
 * DNSSEC-aware lookups for DANE: the records and whether they are secure.
 * Deno.resolveDns returns neither TLSA records nor the AD bit, so
 * {@link dnssecResolver} asks itself: one query with the DO bit (wire.ts
 * encodeQuery) over UDP to the name server, and over TCP again when the
 * answer is truncated (confirm.ts queryTcp) or no UDP socket may be opened
 * (a sandbox without a UDP bind grant).
 *
 * Which name server: the one given, else the first of postwarden_dns_servers or /etc/resolv.conf
 * (read at each lookup; `options timeout:` and `attempts:` apply to the
 * UDP retransmissions). An answer is "secure" only when the name server
 * set the AD bit AND is on a loopback address: the AD bit is a claim made
 * in cleartext, worth only as much as the path it travels, and only a
 * local validating resolver (unbound, knot-resolver, systemd-resolved with
 * DNSSEC=yes) makes it trustworthy. This is Postfix's rule for
 * smtp_dns_support_level = dnssec (RFC 7672 section 2.1 asks for a
 * validating resolver the client can trust), made strict: a name server elsewhere
 * gives answers that are never secure, so DANE then falls back to
 * opportunistic TLS (level.ts) and says why.
 *
 * Failures throw lib/dns {@link DnsError}: "notfound" for NXDOMAIN and for
 * NOERROR without records of the type, "temporary" for SERVFAIL (which is
 * also what a validating resolver answers for bogus data), other rcodes,
 * time-outs and unreachable name servers.
 *
 * Does not: try the other name servers of resolv.conf, use its search
 * list (names are absolute, as Postfix asks them), ask again without EDNS
 * when a name server does not know it (its FORMERR is a temporary
 * failure), cache, or validate DNSSEC itself.
 *
 * @module
 */
import { type NameServer, nameServerSetup, queryTcp } from "../dns/confirm.ts";
import { DnsError, type MxRecord, normalizeName } from "../dns/mod.ts";
import {
  decodeMessage,
  type DnsMessage,
  type DnsRecord,
  encodeQuery,
  followCnames,
  RCODE,
  RR_TYPES,
  type RrType,
} from "../dns/wire.ts";
import type { TlsaRecord } from "./records.ts";

/** Records and whether DNSSEC vouches for them. */
export interface SecureAnswer<T> {
  records: T[];
  /** The AD bit, from a trusted (loopback) resolver. */
  secure: boolean;
  /** The owner of the records: the name asked, or where its CNAME chain ended. */
  name: string;
}

/** The lookups DANE needs. */
export interface DnssecResolver {
  tlsa(name: string): Promise<SecureAnswer<TlsaRecord>>;
  /** MX records as the name server gives them (lib/dns sortMx orders them); "" is a null MX. */
  mx(name: string): Promise<SecureAnswer<MxRecord>>;
  a(name: string): Promise<SecureAnswer<string>>;
  aaaa(name: string): Promise<SecureAnswer<string>>;
}

/** Options for {@link dnssecResolver}. */
export interface DnssecResolverOptions {
  /** Ask this name server. @default the first nameserver of resolv.conf */
  nameServer?: NameServer;
  /** Per lookup, UDP and TCP together. @default resolv.conf's timeout × attempts */
  timeoutMs?: number;
  /** resolv.conf's path. @default "/etc/resolv.conf" */
  resolvConf?: string;
}

/** True for an address on the loopback network (127/8, ::1, IPv4-mapped 127/8). */
export function isLoopback(ip: string): boolean {
  const a = ip.toLowerCase().replace(/^\[|\]$/g, "");
  return /^127\.\d+\.\d+\.\d+$/.test(a) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(a) ||
    /^(0{1,4}:){7}0{0,3}1$/.test(a) || a === "::1";
}

interface Server {
  hostname: string;
  port: number;
  tryMs: number;
  attempts: number;
}

async function server(name: string, type: string, opts: DnssecResolverOptions): Promise<Server> {
  if (opts.nameServer) {
    return {
      hostname: opts.nameServer.ipAddr,
      port: opts.nameServer.port ?? 53,
      tryMs: 5000,
      attempts: 2,
    };
  }
  const path = opts.resolvConf ?? "/etc/resolv.conf";
  let conf;
  try {
    conf = await nameServerSetup(path);
  } catch (e) {
    throw new DnsError("temporary", name, type, `cannot read ${path}: ${(e as Error).message}`);
  }
  if (conf.servers.length === 0) {
    throw new DnsError("temporary", name, type, `no nameserver in ${path}`);
  }
  return {
    hostname: conf.servers[0].ipAddr,
    port: conf.servers[0].port ?? 53,
    tryMs: conf.timeoutMs,
    attempts: conf.attempts,
  };
}

/** Whether `m` answers our query (RFC 5452: id, question; the source is checked by the caller). */
function answersQuery(m: DnsMessage, id: number, name: string, type: RrType): boolean {
  const q = m.question;
  return m.id === id && m.response && m.opcode === 0 && q !== null &&
    q.name.toLowerCase() === normalizeName(name) && q.type === RR_TYPES[type];
}

/**
 * One query over UDP, retransmitted `attempts` times: the answer, or
 * "timeout", or null when no UDP socket can be had (ask over TCP).
 */
async function queryUdp(
  ns: Server,
  name: string,
  type: RrType,
  deadline: number,
): Promise<DnsMessage | "timeout" | null> {
  let conn: Deno.DatagramConn;
  try {
    const local = isLoopback(ns.hostname)
      ? ns.hostname
      : ns.hostname.includes(":")
      ? "::"
      : "0.0.0.0";
    conn = Deno.listenDatagram({ transport: "udp", hostname: local, port: 0 });
  } catch {
    return null;
  }
  const id = crypto.getRandomValues(new Uint16Array(1))[0];
  const query = encodeQuery(id, name, type, { dnssecOk: true });
  const to: Deno.NetAddr = { transport: "udp", hostname: ns.hostname, port: ns.port };
  let pending = conn.receive();
  pending.catch(() => {}); // rejected when the socket closes
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (let attempt = 0; attempt < ns.attempts && Date.now() < deadline; attempt++) {
      await conn.send(query, to);
      const expired = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), Math.min(ns.tryMs, deadline - Date.now()));
      });
      for (;;) {
        const got = await Promise.race([pending, expired]);
        if (got === null) break;
        pending = conn.receive();
        pending.catch(() => {});
        const [data, from] = got as [Uint8Array, Deno.NetAddr];
        if (from.hostname !== ns.hostname || from.port !== ns.port) continue;
        try {
          const m = decodeMessage(data);
          if (answersQuery(m, id, name, type)) return m;
        } catch {
          // not a DNS message: keep waiting for the real answer
        }
      }
      clearTimeout(timer);
    }
    return "timeout";
  } finally {
    clearTimeout(timer);
    conn.close();
  }
}

async function ask(
  name: string,
  type: RrType,
  opts: DnssecResolverOptions,
): Promise<{ reply: DnsMessage; secure: boolean }> {
  const ns = await server(name, type, opts);
  const deadline = Date.now() + (opts.timeoutMs ?? ns.tryMs * ns.attempts);
  let reply: DnsMessage | "timeout" | null;
  try {
    reply = await queryUdp(ns, name, type, deadline);
  } catch (e) {
    const why = `Host not found, try again (${(e as Error).message})`;
    throw new DnsError("temporary", name, type, why); // the socket failed: no route, no permission
  }
  const timedOut = () =>
    new DnsError("temporary", name, type, "Host not found, try again (timed out)", "timeout");
  if (reply === "timeout") throw timedOut();
  if (reply === null || reply.truncated) {
    const left = deadline - Date.now();
    if (left <= 0) throw timedOut();
    try {
      reply = await queryTcp(ns, name, type, left, undefined, { dnssecOk: true });
    } catch (e) {
      const timeout = (e as { kind?: string }).kind === "timeout";
      throw new DnsError(
        "temporary",
        name,
        type,
        `Host not found, try again (${(e as Error).message})`,
        timeout ? "timeout" : undefined,
      );
    }
  }
  return { reply, secure: reply.authenticData && isLoopback(ns.hostname) };
}

/**
 * DNSSEC-aware lookups against a name server (see the module comment).
 * Each lookup throws lib/dns {@link DnsError} when there is no record.
 */
export function dnssecResolver(opts: DnssecResolverOptions = {}): DnssecResolver {
  const lookup = async <T>(
    name: string,
    type: RrType,
    pick: (r: DnsRecord) => T,
  ): Promise<SecureAnswer<T>> => {
    const { reply, secure } = await ask(name, type, opts);
    if (reply.rcode === RCODE.NXDOMAIN) {
      throw new DnsError("notfound", name, type, "Host not found", "nxdomain");
    }
    if (reply.rcode !== RCODE.NOERROR) {
      throw new DnsError("temporary", name, type, "Host not found, try again", "servfail");
    }
    const found = followCnames(reply.answers, name, type);
    if (found.records.length === 0) {
      throw new DnsError(
        "notfound",
        name,
        type,
        "Host found but no data record of requested type",
        "nodata",
      );
    }
    return { records: found.records.map(pick), secure, name: found.name };
  };
  return {
    tlsa: (n) => lookup(n, "TLSA", (r) => r.data as TlsaRecord),
    mx: (n) =>
      lookup(n, "MX", (r) => {
        const mx = r.data as MxRecord;
        return { preference: mx.preference, exchange: normalizeName(mx.exchange) };
      }),
    a: (n) => lookup(n, "A", (r) => r.data as string),
    aaaa: (n) => lookup(n, "AAAA", (r) => r.data as string),
  };
}
