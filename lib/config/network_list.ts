/**
 * Network lists (`mynetworks`) parsed and matched as Postfix does: items in
 * order, the first that matches decides, `!item` negates, `!!item` is
 * `item`. An item is an IPv4 address or net/mask (`127.0.0.0/8`), an IPv6
 * one in brackets (`[::1]/128`, `[fd00::]/64`), or a host name pattern that
 * matches the client's verified name: `example.com` also matches its
 * subdomains, because Postfix's parent_domain_matches_subdomains default
 * includes mynetworks; in that style Postfix's `.example.com` form matches
 * nothing, and so it does here (whatever parent_domain_matches_subdomains
 * says: its other uses are honoured, this one is not).
 *
 * Not supported, and reported so (Postwarden has no lookup tables yet):
 * `/file/name` and `type:table` items; an IPv6 address without brackets is a
 * `type:table` item to Postfix too. Bad items are reported with Postfix's
 * wording ("bad mask length", "non-null host address bits ..."); they stay
 * in the list as errors, and a match that reaches one fails (Postfix answers
 * 451 4.3.0 Temporary lookup failure) rather than skipping it.
 *
 * Pure: no I/O.
 *
 * @module
 */

/** One parsed item. */
export type NetworkItem =
  | { negate: boolean; kind: "net"; bytes: Uint8Array; prefix: number }
  | { negate: boolean; kind: "name"; name: string }
  | { negate: boolean; kind: "error"; text: string };

/** A parsed list and its problems (one message per bad item). */
export interface NetworkList {
  items: NetworkItem[];
  errors: string[];
}

/** Parses an IPv4 or IPv6 address (brackets and "IPv6:" allowed) into bytes, or null. */
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

/** The address in Postfix's notation: dotted quad, or compressed IPv6. */
export function formatIp(b: Uint8Array): string {
  if (b.length === 4) return [...b].join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i] << 8) | b[i + 1]);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** Masks host bits; true if any were set. */
function clearHostBits(bytes: Uint8Array, prefix: number): boolean {
  let dirty = false;
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    const mask = bits === 0 ? 0 : (0xff << (8 - bits)) & 0xff;
    if (bytes[i] & ~mask & 0xff) dirty = true;
    bytes[i] &= mask;
  }
  return dirty;
}

const HOST_PATTERN = /^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i;

/** Parses one item (without its "!"s); an error item carries Postfix's message text. */
function parseItem(param: string, item: string, negate: boolean): NetworkItem {
  const error = (text: string): NetworkItem => ({ negate, kind: "error", text });
  if (item.startsWith("/")) {
    return error(
      `${param}: "${item}": files in network lists are not supported by Postwarden; list the networks in main.cf`,
    );
  }
  const bracketed = /^\[([^\]]*)\](?:\/(.*))?$/.exec(item);
  if (!bracketed && item.includes(":")) {
    return error(
      `${param}: "${item}": lookup tables are not supported by Postwarden (an IPv6 network is written [addr]/len); list the networks in main.cf`,
    );
  }
  const slash = item.indexOf("/");
  const addrText = bracketed ? bracketed[1] : slash >= 0 ? item.slice(0, slash) : item;
  const maskText = bracketed ? bracketed[2] : slash >= 0 ? item.slice(slash + 1) : undefined;
  const bytes = parseIp(addrText);
  if (!bytes) {
    if (bracketed || maskText !== undefined || /^[\d.]+$/.test(item)) {
      return error(`${param}: bad network value in "${item}"`);
    }
    if (!HOST_PATTERN.test(item)) return error(`${param}: bad host name pattern in "${item}"`);
    return { negate, kind: "name", name: item.toLowerCase().replace(/\.$/, "") };
  }
  const bits = bytes.length * 8;
  let prefix = bits;
  if (maskText !== undefined) {
    if (!/^\d+$/.test(maskText) || Number(maskText) > bits) {
      return error(`${param}: bad mask length in "${item}"`);
    }
    prefix = Number(maskText);
  }
  if (clearHostBits(bytes, prefix)) {
    const fixed = bytes.length === 4 ? formatIp(bytes) : `[${formatIp(bytes)}]`;
    return error(
      `${param}: non-null host address bits in "${item}", perhaps you should use "${fixed}/${prefix}" instead`,
    );
  }
  return { negate, kind: "net", bytes, prefix };
}

/** Parses the items of a network list parameter (already split on whitespace and commas). */
export function parseNetworkList(param: string, items: readonly string[]): NetworkList {
  const out: NetworkList = { items: [], errors: [] };
  for (const raw of items) {
    let negate = false;
    let item = raw;
    while (item.startsWith("!")) {
      negate = !negate;
      item = item.slice(1);
    }
    const parsed = item === ""
      ? { negate, kind: "error" as const, text: `${param}: "${raw}": "!" without a pattern` }
      : parseItem(param, item, negate);
    if (parsed.kind === "error") out.errors.push(parsed.text);
    out.items.push(parsed);
  }
  return out;
}

/** The last address {@link clientBytes} parsed: smtpd matches one client against several lists. */
let lastAddress = "";
let lastBytes: Uint8Array | null = null;

/** The address as bytes, IPv4-mapped IPv6 as IPv4; null if not an address. Callers only read it. */
function clientBytes(address: string): Uint8Array | null {
  if (address !== lastAddress) {
    lastBytes = unmapped(address);
    lastAddress = address;
  }
  return lastBytes;
}

function unmapped(address: string): Uint8Array | null {
  const ip = parseIp(address);
  if (ip && ip.length === 16 && ip.subarray(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff))) {
    return ip.slice(12);
  }
  return ip;
}

/** Whether two addresses of the same family share their first `prefix` bits (CIDR matching). */
export function netMatches(ip: Uint8Array, bytes: Uint8Array, prefix: number): boolean {
  if (bytes.length !== ip.length) return false;
  let bits = prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((ip[i] & mask) !== (bytes[i] & mask)) return false;
  }
  return true;
}

/** The name or one of its parent domains equals the pattern (".domain" never does). */
function nameMatches(client: string, pattern: string): boolean {
  const c = client.toLowerCase().replace(/\.$/, "");
  return c === pattern || c.endsWith(`.${pattern}`);
}

/**
 * Matches a client against the list: true or false as the first matching
 * item says (negated or not), false when none matches, "error" when a bad
 * item is reached first.
 */
export function matchNetworkList(
  list: NetworkList,
  client: { addr: string; name?: string },
): boolean | "error" {
  // smtpd asks several lists per connection, most of them empty by default.
  if (list.items.length === 0) return false;
  const ip = clientBytes(client.addr);
  for (const item of list.items) {
    let hit: boolean;
    switch (item.kind) {
      case "error":
        return "error";
      case "net":
        hit = ip !== null && netMatches(ip, item.bytes, item.prefix);
        break;
      case "name":
        hit = client.name !== undefined && nameMatches(client.name, item.name);
        break;
    }
    if (hit) return !item.negate;
  }
  return false;
}
