/**
 * The addresses this mail system receives mail on, for the resolver's test
 * of an address literal (`user@[192.0.2.1]` is local when 192.0.2.1 is one
 * of them): inet_interfaces (Postfix's own_inet_addr) and proxy_interfaces
 * (proxy_inet_addr).
 *
 * An item is an IPv4 or IPv6 address (brackets optional), `all` (every
 * address of this host's interfaces), `loopback-only`, or `localhost`.
 * Other host names would need a DNS lookup at start: they are reported as
 * not supported rather than silently matching nothing.
 *
 * @module
 */
import { parseIp } from "../config/mod.ts";

/** What listing this host's interfaces needs; injected in tests. */
export type InterfaceLister = () => string[];

/** Deno.networkInterfaces() addresses, or null without --allow-sys=networkInterfaces. */
export function systemInterfaces(): string[] | null {
  try {
    return Deno.networkInterfaces().map((i) => i.address);
  } catch {
    return null;
  }
}

const LOOPBACK = ["127.0.0.1", "::1"];

/** Options for {@link interfaceAddresses}. */
export interface InterfaceOptions {
  /** inet_protocols items ("all", "ipv4", "ipv6"). @default ["all"] */
  protocols?: string[];
  /** Lists this host's addresses for "all". @default systemInterfaces, loopback when not permitted */
  lister?: () => string[] | null;
  /** Where a fallback is reported. @default console.warn */
  warn?: (message: string) => void;
}

/**
 * The addresses (as 4 or 16 bytes) that an inet_interfaces or
 * proxy_interfaces value names.
 *
 * @throws {Error} for an item that is neither an address nor a keyword.
 */
export function interfaceAddresses(
  title: string,
  items: string[],
  opts: InterfaceOptions = {},
): Uint8Array[] {
  const protocols = (opts.protocols ?? ["all"]).map((p) => p.toLowerCase());
  const v4 = protocols.includes("all") || protocols.includes("ipv4");
  const v6 = protocols.includes("all") || protocols.includes("ipv6");
  const texts: string[] = [];
  for (const item of items) {
    const lower = item.toLowerCase();
    if (lower === "all") {
      const listed = (opts.lister ?? systemInterfaces)();
      if (listed === null) {
        (opts.warn ?? console.warn)(
          `${title} = all: cannot list this host's interfaces here (no ` +
            "--allow-sys=networkInterfaces); only loopback address literals count as local",
        );
      }
      texts.push(...(listed ?? LOOPBACK));
    } else if (lower === "loopback-only" || lower === "localhost") {
      texts.push(...LOOPBACK);
    } else if (parseIp(item) !== null) {
      texts.push(item);
    } else {
      throw new Error(
        `${title}: "${item}": host names are not supported by Postwarden here; ` +
          "list interface addresses",
      );
    }
  }
  const out: Uint8Array[] = [];
  for (const t of texts) {
    const b = parseIp(t.replace(/%.*$/, ""));
    if (b === null || (b.length === 4 && !v4) || (b.length === 16 && !v6)) continue;
    out.push(b);
  }
  return out;
}

/** True when `[literal]`'s address is one of addrs; IPv6 needs the "IPv6:" tag. */
export function literalMatches(literal: string, addrs: Uint8Array[]): boolean {
  if (!literal.startsWith("[") || !literal.endsWith("]")) return false;
  const inner = literal.slice(1, -1);
  const v6 = /^ipv6:/i.test(inner);
  const b = parseIp(v6 ? inner.slice(5) : inner);
  if (b === null || (b.length === 16) !== v6) return false;
  return addrs.some((a) => a.length === b.length && a.every((x, i) => x === b[i]));
}
