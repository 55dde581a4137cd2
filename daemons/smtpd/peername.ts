/**
 * The client's host name for logs and Received headers, as Postfix's
 * smtpd finds it (smtpd_peername_lookup): /etc/hosts first, then a DNS PTR
 * lookup whose name must resolve back to the same address
 * (forward-confirmed); anything else is "unknown". Lookups are bounded by
 * a time limit so a dead resolver cannot hold a session for long.
 * The resolver is injected; no caching beyond the system's.
 */
import { parseIp } from "../../lib/config/mod.ts";

/** The lookups peer naming needs. */
export interface PeerResolver {
  resolvePtr(name: string): Promise<string[]>;
  resolveA(name: string): Promise<string[]>;
  resolveAaaa(name: string): Promise<string[]>;
}

/** Deno.resolveDns, with a time limit per query. */
export function denoPeerResolver(timeoutMs: number): PeerResolver {
  const q = async (name: string, type: "PTR" | "A" | "AAAA"): Promise<string[]> => {
    const signal = AbortSignal.timeout(timeoutMs);
    return (await Deno.resolveDns(name, type, { signal })) as string[];
  };
  return {
    resolvePtr: (n) => q(n, "PTR"),
    resolveA: (n) => q(n, "A"),
    resolveAaaa: (n) => q(n, "AAAA"),
  };
}

/** The PTR query name of an address, or null if it is not an IP address. */
export function reverseName(addr: string): string | null {
  const b = parseIp(addr);
  if (!b) return null;
  if (b.length === 4) return `${b[3]}.${b[2]}.${b[1]}.${b[0]}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((b[i] & 0xf).toString(16), (b[i] >> 4).toString(16));
  return `${nibbles.join(".")}.ip6.arpa`;
}

function sameIp(a: string, b: string): boolean {
  const x = parseIp(a);
  const y = parseIp(b);
  return !!x && !!y && x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Finds the verified name of a client address, or "unknown". Never throws. */
export async function peerName(
  addr: string,
  opts: { hosts: Map<string, string>; resolver: PeerResolver | null },
): Promise<string> {
  const fromHosts = opts.hosts.get(addr);
  if (fromHosts) return fromHosts;
  // Only the loopback address itself: 127.0.0.2 has no name unless /etc/hosts gives one.
  if (addr === "::1" || addr === "127.0.0.1") return "localhost";
  const r = opts.resolver;
  const rev = reverseName(addr);
  if (!r || !rev) return "unknown";
  try {
    const names = await r.resolvePtr(rev);
    const v6 = addr.includes(":");
    for (const raw of names.slice(0, 5)) {
      const name = raw.replace(/\.$/, "");
      const addrs = await (v6 ? r.resolveAaaa(name) : r.resolveA(name)).catch(() => []);
      if (addrs.some((a) => sameIp(a, addr))) return name.toLowerCase();
    }
  } catch {
    // no PTR, or the resolver failed or timed out: Postfix says "unknown" too
  }
  return "unknown";
}
