/**
 * The DNS message format (RFC 1035 section 4) for the few questions mail
 * needs: {@link encodeQuery} builds one query (A, AAAA, MX, TXT, PTR, NS,
 * CNAME, TLSA), optionally with an EDNS0 OPT record asking for DNSSEC
 * (the DO bit), {@link decodeMessage} reads a reply's header (its rcode,
 * TC and AD bits), its question and its answer records (name compression
 * included), and {@link followCnames} picks the records that answer the
 * question out of a CNAME chain.
 *
 * The decoder reads hostile input: every length is checked against the
 * message, a compression pointer must point before the name that uses it
 * (so a chain of pointers always ends; RFC 1035 4.1.4 only allows "a prior
 * occurrence"), a name is at most 255 octets, and the counts in the header
 * cannot make it read past the end. Anything wrong throws
 * {@link DnsFormatError}; nothing loops. Label bytes outside printable
 * ASCII are kept as "\DDD" escapes, so a name never carries a control
 * character or a dot that was not a label boundary.
 *
 * Does no I/O (lib/dns/confirm.ts and lib/dane send the queries). Of EDNS
 * only the OPT record of a query is written: a reply's OPT record (its
 * extended rcode and flags) is not read. No DNSSEC validation and no
 * DNSSEC record types (RRSIG, NSEC, DS, DNSKEY are kept as unknown types):
 * the AD bit is the validating resolver's verdict, and whether to trust it
 * is the caller's decision (lib/dane). The authority and additional
 * sections are not decoded (nothing here needs them).
 *
 * @module
 */

/** A malformed DNS message (truncated, a bad pointer, a bad length). */
export class DnsFormatError extends Error {
  override readonly name = "DnsFormatError";
}

/** The record types this codec knows, by name. */
export const RR_TYPES = {
  A: 1,
  NS: 2,
  CNAME: 5,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  TLSA: 52,
} as const;

/** A record type this codec can ask for. */
export type RrType = keyof typeof RR_TYPES;

/** RFC 1035/2136 response codes that mail cares about. */
export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

const CLASS_IN = 1;
const TYPE_SOA = 6;
const MAX_NAME = 255;
const TYPE_OPT = 41;
/** The UDP payload size an EDNS0 query offers: the DNS Flag Day 2020 value, no fragmentation. */
export const EDNS_UDP_SIZE = 1232;

/** A TLSA record's data (RFC 6698 section 2.1): three one-octet fields and the association data. */
export interface TlsaData {
  /** 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE. */
  usage: number;
  /** 0 the whole certificate, 1 its SubjectPublicKeyInfo. */
  selector: number;
  /** 0 the selected bytes as they are, 1 their SHA-256, 2 their SHA-512. */
  matchingType: number;
  /** The certificate association data (may be empty: the caller judges it). */
  data: Uint8Array;
}

/** One decoded answer record; `data` depends on the type. */
export type DnsRecord =
  | { name: string; type: "A" | "AAAA"; ttl: number; data: string }
  | { name: string; type: "NS" | "CNAME" | "PTR"; ttl: number; data: string }
  | { name: string; type: "MX"; ttl: number; data: { preference: number; exchange: string } }
  | { name: string; type: "TXT"; ttl: number; data: string[] }
  | { name: string; type: "TLSA"; ttl: number; data: TlsaData }
  /** A type this codec does not decode: its number, rdata skipped. */
  | { name: string; type: number; ttl: number; data: null };

/** A decoded message. */
export interface DnsMessage {
  id: number;
  /** QR: a response. */
  response: boolean;
  opcode: number;
  /** TC: the answer did not fit (UDP). */
  truncated: boolean;
  /**
   * AD (RFC 4035 3.2.3): the resolver validated every record of the answer
   * with DNSSEC. Worth only as much as the path to that resolver.
   */
  authenticData: boolean;
  rcode: number;
  question: { name: string; type: number; class: number } | null;
  answers: DnsRecord[];
  /**
   * How long a negative answer (NXDOMAIN, no data) may be cached, seconds:
   * the smaller of the authority section's SOA record TTL and its MINIMUM
   * field (RFC 2308 section 5). Absent without a SOA record there.
   */
  negativeTtl?: number;
}

/**
 * Encodes `name` as labels. Throws {@link DnsFormatError} for an empty
 * label, a label over 63 octets, a name over 255 octets or a byte that no
 * host name has (only letters, digits, "-" and "_" pass; IDN names must
 * be given in their ASCII "xn--" form).
 */
export function encodeName(name: string): Uint8Array {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  const out: number[] = [];
  if (bare !== "") {
    for (const label of bare.split(".")) {
      if (label.length === 0 || label.length > 63) {
        throw new DnsFormatError(`bad label length in "${name}"`);
      }
      if (!/^[A-Za-z0-9_-]+$/.test(label)) {
        throw new DnsFormatError(`bad character in "${name}"`);
      }
      out.push(label.length);
      for (let i = 0; i < label.length; i++) out.push(label.charCodeAt(i));
    }
  }
  out.push(0);
  if (out.length > MAX_NAME) throw new DnsFormatError(`name too long: "${name}"`);
  return new Uint8Array(out);
}

/** Options for {@link encodeQuery}. */
export interface QueryOptions {
  /**
   * Add an EDNS0 OPT record (RFC 6891) offering {@link EDNS_UDP_SIZE}-octet
   * UDP answers, with the DO bit (RFC 3225): a validating resolver then says
   * with the AD bit whether the answer is secure. @default false
   */
  dnssecOk?: boolean;
}

/** A standard query for `name`/`type` with recursion desired. */
export function encodeQuery(
  id: number,
  name: string,
  type: RrType,
  opts: QueryOptions = {},
): Uint8Array {
  const qname = encodeName(name);
  const opt = opts.dnssecOk ? 11 : 0;
  const msg = new Uint8Array(12 + qname.length + 4 + opt);
  const v = new DataView(msg.buffer);
  v.setUint16(0, id & 0xffff);
  v.setUint16(2, 0x0100); // RD
  v.setUint16(4, 1); // QDCOUNT
  msg.set(qname, 12);
  v.setUint16(12 + qname.length, RR_TYPES[type]);
  v.setUint16(12 + qname.length + 2, CLASS_IN);
  if (opt) {
    // OPT: root name, type 41, class = UDP size, TTL = extended rcode 0, version 0, DO; no options.
    const at = 12 + qname.length + 4;
    v.setUint16(10, 1); // ARCOUNT
    v.setUint16(at + 1, TYPE_OPT);
    v.setUint16(at + 3, EDNS_UDP_SIZE);
    v.setUint16(at + 7, 0x8000); // DO
  }
  return msg;
}

/** Reads a (possibly compressed) name at `start`; returns it and where the record goes on. */
export function decodeName(msg: Uint8Array, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let pos = start;
  let end = -1; // where the caller continues: after the first pointer or the final 0
  let wire = 1; // the name's length on the wire, with the root label
  // A pointer must point before the name that holds it (a prior occurrence), and each
  // further one before the last target: `limit` only shrinks, so the walk ends.
  let limit = start;
  for (;;) {
    if (pos >= msg.length) throw new DnsFormatError("name runs past the end of the message");
    const len = msg[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= msg.length) throw new DnsFormatError("truncated compression pointer");
      const target = ((len & 0x3f) << 8) | msg[pos + 1];
      if (end < 0) end = pos + 2;
      if (target >= limit) throw new DnsFormatError("compression pointer does not point back");
      limit = target;
      pos = target;
      continue;
    }
    if (kind !== 0) throw new DnsFormatError("unknown label type");
    if (pos + 1 + len > msg.length) throw new DnsFormatError("label runs past the end");
    wire += 1 + len;
    if (wire > MAX_NAME) throw new DnsFormatError("name longer than 255 octets");
    labels.push(labelText(msg.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return { name: labels.join("."), end };
}

/** A label as text: printable ASCII except "." and "\" as is, anything else as "\DDD". */
function labelText(b: Uint8Array): string {
  let s = "";
  for (const c of b) {
    s += c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c
      ? String.fromCharCode(c)
      : `\\${String(c).padStart(3, "0")}`;
  }
  return s;
}

function ipv6Text(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i] << 8) | b[i + 1]).toString(16));
  // The longest run of two or more zero groups becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

function rdataOf(
  msg: Uint8Array,
  type: number,
  start: number,
  len: number,
): DnsRecord["data"] {
  const end = start + len;
  const exact = (want: number) => {
    if (len !== want) throw new DnsFormatError(`bad rdata length ${len} for type ${type}`);
  };
  const nameWithin = (at: number) => {
    const n = decodeName(msg, at);
    if (n.end > end) throw new DnsFormatError("name runs past its record");
    return n;
  };
  switch (type) {
    case RR_TYPES.A:
      exact(4);
      return Array.from(msg.subarray(start, end)).join(".");
    case RR_TYPES.AAAA:
      exact(16);
      return ipv6Text(msg.subarray(start, end));
    case RR_TYPES.NS:
    case RR_TYPES.CNAME:
    case RR_TYPES.PTR: {
      const n = nameWithin(start);
      if (n.end !== end) throw new DnsFormatError("junk after a name in rdata");
      return n.name;
    }
    case RR_TYPES.MX: {
      if (len < 3) throw new DnsFormatError("MX record too short");
      const n = nameWithin(start + 2);
      if (n.end !== end) throw new DnsFormatError("junk after an MX exchange");
      return { preference: (msg[start] << 8) | msg[start + 1], exchange: n.name };
    }
    case RR_TYPES.TXT: {
      const parts: string[] = [];
      let p = start;
      while (p < end) {
        const n = msg[p];
        if (p + 1 + n > end) throw new DnsFormatError("TXT string runs past its record");
        parts.push(new TextDecoder().decode(msg.subarray(p + 1, p + 1 + n)));
        p += 1 + n;
      }
      return parts;
    }
    case RR_TYPES.TLSA:
      if (len < 3) throw new DnsFormatError("TLSA record too short");
      return {
        usage: msg[start],
        selector: msg[start + 1],
        matchingType: msg[start + 2],
        data: msg.slice(start + 3, end),
      };
    default:
      return null;
  }
}

const TYPE_NAMES = new Map<number, RrType>(
  Object.entries(RR_TYPES).map(([k, v]) => [v, k as RrType]),
);

/**
 * Decodes a DNS message. The question (the first, if any) and the answer
 * section are read, and of the authority section a SOA record's negative
 * TTL; records of other classes than IN are skipped.
 * Throws {@link DnsFormatError} on anything malformed.
 */
export function decodeMessage(msg: Uint8Array): DnsMessage {
  if (msg.length < 12) throw new DnsFormatError("message shorter than its header");
  const v = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = v.getUint16(2);
  const qd = v.getUint16(4);
  const an = v.getUint16(6);
  let pos = 12;
  let question: DnsMessage["question"] = null;
  for (let i = 0; i < qd; i++) {
    const n = decodeName(msg, pos);
    if (n.end + 4 > msg.length) throw new DnsFormatError("truncated question");
    if (i === 0) {
      question = { name: n.name, type: v.getUint16(n.end), class: v.getUint16(n.end + 2) };
    }
    pos = n.end + 4;
  }
  const answers: DnsRecord[] = [];
  for (let i = 0; i < an; i++) {
    const n = decodeName(msg, pos);
    if (n.end + 10 > msg.length) throw new DnsFormatError("truncated record header");
    const type = v.getUint16(n.end);
    const cls = v.getUint16(n.end + 2);
    const ttl = v.getUint32(n.end + 4);
    const len = v.getUint16(n.end + 8);
    const start = n.end + 10;
    if (start + len > msg.length) throw new DnsFormatError("record data runs past the end");
    if (cls === CLASS_IN) {
      const data = rdataOf(msg, type, start, len);
      const known = TYPE_NAMES.get(type);
      answers.push(
        (known && data !== null
          ? { name: n.name, type: known, ttl, data }
          : { name: n.name, type, ttl, data: null }) as DnsRecord,
      );
    }
    pos = start + len;
  }
  // The authority section: only a SOA record is of use (a negative answer's TTL).
  const ns = v.getUint16(8);
  let negativeTtl: number | undefined;
  for (let i = 0; i < ns; i++) {
    const n = decodeName(msg, pos);
    if (n.end + 10 > msg.length) throw new DnsFormatError("truncated record header");
    const type = v.getUint16(n.end);
    const ttl = v.getUint32(n.end + 4);
    const len = v.getUint16(n.end + 8);
    const start = n.end + 10;
    if (start + len > msg.length) throw new DnsFormatError("record data runs past the end");
    if (type === TYPE_SOA && v.getUint16(n.end + 2) === CLASS_IN && negativeTtl === undefined) {
      const mname = decodeName(msg, start);
      const rname = decodeName(msg, mname.end);
      if (rname.end + 20 !== start + len) throw new DnsFormatError("bad SOA record length");
      negativeTtl = Math.min(ttl, v.getUint32(rname.end + 16));
    }
    pos = start + len;
  }
  return {
    ...(negativeTtl === undefined ? {} : { negativeTtl }),
    id: v.getUint16(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    truncated: (flags & 0x0200) !== 0,
    authenticData: (flags & 0x0020) !== 0,
    rcode: flags & 0xf,
    question,
    answers,
  };
}

/**
 * The records of `type` that answer a question for `name`: the chain of
 * CNAME records from `name` is followed through the answers (each name at
 * most once, so a loop ends), and the records owned by its last name are
 * returned with that name (the canonical name; `name` itself, without its
 * trailing dot and in lower case, when there is no CNAME).
 */
export function followCnames(
  answers: DnsRecord[],
  name: string,
  type: RrType,
): { name: string; records: DnsRecord[] } {
  let owner = name.replace(/\.$/, "").toLowerCase();
  const seen = new Set([owner]);
  for (;;) {
    const alias = answers.find((r) => r.type === "CNAME" && r.name.toLowerCase() === owner);
    const target = (alias?.data as string | undefined)?.toLowerCase();
    if (target === undefined || seen.has(target)) break;
    seen.add(target);
    owner = target;
  }
  return {
    name: owner,
    records: answers.filter((r) => r.type === type && r.name.toLowerCase() === owner),
  };
}

/** Writes a DNS message over TCP (RFC 1035 4.2.2: a two-byte length first), all of it. */
export async function writeFramed(
  conn: { write(p: Uint8Array): Promise<number> },
  msg: Uint8Array,
): Promise<void> {
  const framed = new Uint8Array(2 + msg.length);
  framed[0] = msg.length >> 8;
  framed[1] = msg.length & 0xff;
  framed.set(msg, 2);
  let sent = 0;
  while (sent < framed.length) sent += await conn.write(framed.subarray(sent));
}
