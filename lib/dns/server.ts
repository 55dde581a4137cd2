/**
 * A tiny authoritative DNS server over UDP and TCP (the same address and
 * port; RFC 1035 4.2.2 framing), for `postwarden test`'s zone (lib/testrun)
 * and the interop tests: it answers A, AAAA, MX,
 * TXT, PTR and NS questions from a table, NXDOMAIN for names it does not know,
 * an empty answer (NOERROR, no data) for a known name without records of
 * the type asked, SERVFAIL or REFUSED for names under the given suffixes,
 * and nothing for names under the "silent" ones (a time-out). No
 * recursion, no EDNS, no compression beyond the question name. Needs
 * Deno's unstable net API (deno.json "unstable").
 *
 * @module
 */
import { writeFramed } from "./wire.ts";

/** Records of one name, by type. MX: [preference, exchange] ("." for a null MX). */
export interface ZoneName {
  A?: string[];
  AAAA?: string[];
  MX?: [number, string][];
  TXT?: string[];
  PTR?: string[];
  NS?: string[];
}

/** What the server answers. */
export interface Zone {
  /** Names (lower case, no trailing dot) and their records. */
  names: Record<string, ZoneName>;
  /** Names equal to or under these answer SERVFAIL. */
  servfail?: string[];
  /** Names equal to or under these answer REFUSED. */
  refused?: string[];
  /** Names equal to or under these get no answer at all (the client times out). */
  silent?: string[];
  /** The records' TTL, seconds. @default 60 */
  ttl?: number;
  /** A SOA record in the authority section of negative answers (its TTL and MINIMUM). */
  soa?: { ttl: number; minimum: number };
}

/** A running server; `queries` lists "TYPE name" as asked ("TCP TYPE name" over TCP). */
export interface DnsServer {
  queries: string[];
  /** The port it listens on (the one asked for, or the one chosen for 0). */
  port: number;
  close(): void;
}

/** Options for {@link startDnsServer}. */
export interface DnsServerOptions {
  /** Also serve TCP (a resolver that does not: false). @default true */
  tcp?: boolean;
}

const TYPES: Record<number, keyof ZoneName> = {
  1: "A",
  28: "AAAA",
  15: "MX",
  16: "TXT",
  12: "PTR",
  2: "NS",
};
const CODES: Record<string, number> = { A: 1, AAAA: 28, MX: 15, TXT: 16, PTR: 12, NS: 2 };

function encodeName(name: string): number[] {
  const out: number[] = [];
  for (const label of name.replace(/\.$/, "").split(".").filter((l) => l !== "")) {
    const b = new TextEncoder().encode(label);
    out.push(b.length, ...b);
  }
  out.push(0);
  return out;
}

function ipv6Bytes(addr: string): number[] {
  const [head, tail] = addr.includes("::") ? addr.split("::") : [addr, ""];
  const h = head ? head.split(":") : [];
  const t = tail ? tail.split(":") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  return groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]);
}

function rdata(type: keyof ZoneName, value: string | [number, string]): number[] {
  switch (type) {
    case "A":
      return (value as string).split(".").map(Number);
    case "AAAA":
      return ipv6Bytes(value as string);
    case "MX": {
      const [pref, host] = value as [number, string];
      return [pref >> 8, pref & 0xff, ...encodeName(host)];
    }
    case "TXT": {
      const b = new TextEncoder().encode(value as string);
      const out: number[] = [];
      for (let i = 0; i < b.length || i === 0; i += 255) {
        const part = b.subarray(i, i + 255);
        out.push(part.length, ...part);
      }
      return out;
    }
    case "PTR":
    case "NS":
      return encodeName(value as string);
  }
}

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** The reply to one query datagram, or null for none (not a query we can parse, or silent). */
export function answer(zone: Zone, q: Uint8Array, log?: (s: string) => void): Uint8Array | null {
  if (q.length < 17 || (q[2] & 0x80) !== 0) return null;
  let i = 12;
  const labels: string[] = [];
  while (i < q.length && q[i] !== 0) {
    const n = q[i];
    if (n > 63 || i + 1 + n > q.length) return null;
    labels.push(new TextDecoder().decode(q.subarray(i + 1, i + 1 + n)));
    i += 1 + n;
  }
  if (i + 5 > q.length) return null;
  const qtype = (q[i + 1] << 8) | q[i + 2];
  const questionEnd = i + 5;
  const name = labels.join(".").toLowerCase();
  const type = TYPES[qtype];
  log?.(`${type ?? qtype} ${name}`);
  const under = (list?: string[]) => (list ?? []).some((s) => name === s || name.endsWith(`.${s}`));
  if (under(zone.silent)) return null;
  let rcode = 0;
  const answers: number[][] = [];
  if (under(zone.servfail)) rcode = 2;
  else if (under(zone.refused)) rcode = 5;
  else if (!Object.hasOwn(zone.names, name)) rcode = 3;
  else if (type) {
    for (const v of zone.names[name][type] ?? []) {
      const rd = rdata(type, v);
      answers.push([
        0xc0,
        0x0c,
        0,
        CODES[type],
        0,
        1,
        ...u32(zone.ttl ?? 60),
        rd.length >> 8,
        rd.length & 0xff,
        ...rd,
      ]);
    }
  }
  // RFC 2308: a negative answer's SOA (owner: the root, which is all this server knows).
  const authority: number[][] = [];
  if (zone.soa && (rcode === 3 || (rcode === 0 && answers.length === 0))) {
    const rd = [
      ...encodeName("ns.test"),
      ...encodeName("hostmaster.test"),
      ...u32(1),
      ...u32(3600),
      ...u32(600),
      ...u32(86400),
      ...u32(zone.soa.minimum),
    ];
    authority.push([0, 0, 6, 0, 1, ...u32(zone.soa.ttl), rd.length >> 8, rd.length & 0xff, ...rd]);
  }
  const header = [
    q[0],
    q[1],
    0x84 | (q[2] & 0x01), // response, authoritative, RD copied
    0x80 | rcode, // RA
    0,
    1,
    answers.length >> 8,
    answers.length & 0xff,
    0,
    authority.length,
    0,
    0,
  ];
  return new Uint8Array([
    ...header,
    ...q.subarray(12, questionEnd),
    ...answers.flat(),
    ...authority.flat(),
  ]);
}

/** Serves `zone` on UDP (and TCP) `hostname:port` until closed. */
export function startDnsServer(
  hostname: string,
  port: number,
  zone: Zone,
  opts: DnsServerOptions = {},
): DnsServer {
  const { conn, listener } = bind(hostname, port, opts.tcp !== false);
  const bound = (conn.addr as Deno.NetAddr).port;
  const queries: string[] = [];
  (async () => {
    try {
      for await (const [data, addr] of conn) {
        const reply = answer(zone, data, (s) => queries.push(s));
        if (reply) await conn.send(reply, addr);
      }
    } catch {
      // closed
    }
  })();
  const open = new Set<Deno.Conn>();
  if (listener) {
    (async () => {
      try {
        for await (const c of listener) {
          open.add(c);
          serveTcp(zone, c, (s) => queries.push(`TCP ${s}`)).finally(() => open.delete(c));
        }
      } catch {
        // closed
      }
    })();
  }
  return {
    queries,
    port: bound,
    close: () => {
      conn.close();
      listener?.close();
      for (const c of open) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
    },
  };
}

/**
 * The UDP socket and the TCP listener on one port. With port 0 the port
 * UDP was given may be taken for TCP: then another is tried.
 */
function bind(
  hostname: string,
  port: number,
  tcp: boolean,
): { conn: Deno.DatagramConn; listener: Deno.Listener | null } {
  for (let tries = 0;; tries++) {
    const conn = Deno.listenDatagram({ transport: "udp", hostname, port });
    if (!tcp) return { conn, listener: null };
    try {
      return { conn, listener: Deno.listen({ hostname, port: (conn.addr as Deno.NetAddr).port }) };
    } catch (e) {
      conn.close();
      if (port !== 0 || !(e instanceof Deno.errors.AddrInUse) || tries > 50) throw e;
    }
  }
}

/** Answers length-prefixed queries on one TCP connection until the client closes it. */
async function serveTcp(zone: Zone, c: Deno.Conn, log: (s: string) => void): Promise<void> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  try {
    for (;;) {
      const n = await c.read(chunk);
      if (n === null) return;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      while (buf.length >= 2 && buf.length >= 2 + ((buf[0] << 8) | buf[1])) {
        const len = (buf[0] << 8) | buf[1];
        const reply = answer(zone, buf.subarray(2, 2 + len), log);
        buf = buf.slice(2 + len);
        if (reply) await writeFramed(c, reply);
      }
    }
  } catch {
    // closed
  } finally {
    try {
      c.close();
    } catch {
      // already closed
    }
  }
}
