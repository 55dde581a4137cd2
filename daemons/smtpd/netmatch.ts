/**
 * Client address matching for `mynetworks`: IPv4 and IPv6 addresses and
 * CIDR blocks, Postfix's notation (`127.0.0.0/8`, `[::1]/128`). Pure.
 * Lookup tables in mynetworks (type:name) are not supported and are
 * reported by {@link parseNetworks}.
 */

/** A parsed network block. */
export interface Network {
  bytes: Uint8Array;
  prefix: number;
}

/** Parses an IPv4 or IPv6 address into bytes, or null. */
export function parseIp(text: string): Uint8Array | null {
  const s = text.replace(/^\[|\]$/g, "").replace(/^ipv6:/i, "");
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) {
    const parts = s.split(".").map(Number);
    if (parts.some((p) => p > 255)) return null;
    return new Uint8Array(parts);
  }
  if (!s.includes(":")) return null;
  let head = s;
  let v4: number[] = [];
  const m = /^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/.exec(s);
  if (m) {
    const b = parseIp(m[2]);
    if (!b) return null;
    v4 = [...b];
    head = m[1].endsWith("::") ? m[1] : m[1].slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (x: string) => (x === "" ? [] : x.split(":"));
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  const total = 8 - v4.length / 2;
  if (halves.length === 1 && left.length !== total) return null;
  const fill = total - left.length - right.length;
  if (fill < 0) return null;
  const all = [...left, ...Array(fill).fill("0"), ...right];
  const out = new Uint8Array(16);
  for (let i = 0; i < all.length; i++) {
    if (!/^[0-9a-f]{1,4}$/i.test(all[i])) return null;
    const v = parseInt(all[i], 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  out.set(v4, 16 - v4.length);
  return out;
}

/** Parses mynetworks items. Unsupported items (tables, hostnames) are returned as errors. */
export function parseNetworks(items: string[]): { networks: Network[]; errors: string[] } {
  const networks: Network[] = [];
  const errors: string[] = [];
  for (const item of items) {
    const slash = item.lastIndexOf("/");
    const addr = slash > 0 && !item.includes(":/") ? item.slice(0, slash) : item;
    const bytes = parseIp(addr);
    if (!bytes) {
      errors.push(`mynetworks: "${item}" is not supported (only addresses and CIDR blocks)`);
      continue;
    }
    const prefix = slash > 0 ? Number(item.slice(slash + 1)) : bytes.length * 8;
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > bytes.length * 8) {
      errors.push(`mynetworks: bad prefix in "${item}"`);
      continue;
    }
    networks.push({ bytes, prefix });
  }
  return { networks, errors };
}

/** True if the address lies in one of the networks. IPv4-mapped IPv6 matches IPv4 blocks. */
export function inNetworks(address: string, networks: Network[]): boolean {
  let ip = parseIp(address);
  if (!ip) return false;
  if (ip.length === 16 && ip.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff))) {
    ip = ip.slice(12);
  }
  for (const n of networks) {
    if (n.bytes.length !== ip.length) continue;
    let bits = n.prefix;
    let ok = true;
    for (let i = 0; bits > 0; i++, bits -= 8) {
      const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      if ((ip[i] & mask) !== (n.bytes[i] & mask)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}
