/**
 * NAME
 *   haproxy - the HAProxy PROXY protocol (v1 text, v2 binary) for smtpd
 *
 * SUMMARY
 *   With `smtpd_upstream_proxy_protocol = haproxy` smtpd sits behind a
 *   proxy that sends, before any SMTP byte, a header naming the real
 *   client's address and port. {@link parseProxyHeader} parses one header
 *   from the bytes received so far (pure, no I/O) and says whether it needs
 *   more; {@link readProxyHeader} reads exactly the header from a
 *   connection, within `smtpd_upstream_proxy_timeout`, and hands whatever
 *   the client sent after it back to the caller for the SMTP session.
 *
 * DESCRIPTION
 *   As Postfix (global/haproxy_srvr.c): v1 `PROXY TCP4|TCP6 caddr saddr
 *   cport sport\r\n` and v2 PROXY/LOCAL over TCP4/TCP6. The v1 `UNKNOWN`
 *   family and v2 UNIX/UDP are refused, because they would sidestep
 *   address-based access control. A protocol not enabled in
 *   inet_protocols is refused; an IPv4-mapped IPv6 address becomes IPv4
 *   when IPv4 is enabled. v2 TLVs are skipped. The whole header must fit
 *   in 536 bytes (Postfix's HAPROXY_HEADER_MAX_LEN). Error texts are
 *   Postfix's, for its log line `warning: haproxy read: <error>: <bytes>`.
 *
 *   Unlike Postfix, which peeks at the socket once, the header may arrive
 *   in pieces; it must be complete within the timeout.
 *
 *   Not done: v2 TLVs (SSL, authority) are not interpreted; the server
 *   address and port are returned but smtpd has no use for them yet.
 */
import { formatIp, parseIp } from "../../lib/config/network_list.ts";

/** Postfix's limit on the size of a proxy header. */
export const HAPROXY_HEADER_MAX_LEN = 536;

const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const V2_HEADER_LEN = 16;
const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "

/** Which address families the server accepts (from inet_protocols). */
export interface ProxyFamilies {
  ipv4: boolean;
  ipv6: boolean;
}

/** The endpoints a proxy reported. */
export interface ProxyEndpoints {
  clientAddr: string;
  clientPort: number;
  serverAddr: string;
  serverPort: number;
}

/** What the bytes received so far hold. */
export type ProxyParse =
  /** Not enough bytes yet to decide. */
  | { kind: "more" }
  /** A proxied connection; `length` bytes are the header. */
  | { kind: "proxy"; length: number; endpoints: ProxyEndpoints }
  /** v2 LOCAL (a health check from the proxy itself): use the connection's own endpoints. */
  | { kind: "local"; length: number }
  /** A bad header, with Postfix's reason text. */
  | { kind: "error"; reason: string };

function startsWith(buf: Uint8Array, prefix: number[]): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return false;
  return true;
}

/**
 * Parses a proxy header at the start of `buf`. `final` says no more bytes
 * will come (end of input, or the size limit reached): the answer is then
 * never "more". Never throws.
 */
export function parseProxyHeader(
  buf: Uint8Array,
  families: ProxyFamilies,
  final = false,
): ProxyParse {
  const more = !final && buf.length < HAPROXY_HEADER_MAX_LEN;
  if (buf.length < V1_PREFIX.length && startsWith(buf, V1_PREFIX)) {
    return more ? { kind: "more" } : v2(buf, families, false);
  }
  if (buf.length >= V1_PREFIX.length && startsWith(buf, V1_PREFIX)) return v1(buf, families, more);
  return v2(buf, families, more);
}

function v1(buf: Uint8Array, families: ProxyFamilies, more: boolean): ProxyParse {
  const window = buf.subarray(0, HAPROXY_HEADER_MAX_LEN);
  const nl = window.indexOf(0x0a);
  if (nl < 0) return more ? { kind: "more" } : error("missing protocol header terminator");
  let line = "";
  for (let i = 0; i < nl; i++) line += String.fromCharCode(window[i]);
  const tokens = line.split(/[ \r]+/).filter((t) => t !== "");
  if (tokens[0] !== "PROXY") return error("bad or missing protocol header");
  const proto = tokens[1]?.toUpperCase();
  const family = proto === "TCP6" && families.ipv6 ? 6 : proto === "TCP4" && families.ipv4 ? 4 : 0;
  if (family === 0) return error("bad or missing protocol type");
  const clientAddr = textAddr(tokens[2], family, families);
  if (clientAddr === null) return error("bad or missing client address");
  const serverAddr = textAddr(tokens[3], family, families);
  if (serverAddr === null) return error("bad or missing server address");
  const clientPort = textPort(tokens[4]);
  if (clientPort === null) return error("bad or missing client port");
  const serverPort = textPort(tokens[5]);
  if (serverPort === null) return error("bad or missing server port");
  return {
    kind: "proxy",
    length: nl + 1,
    endpoints: { clientAddr, clientPort, serverAddr, serverPort },
  };
}

function v2(buf: Uint8Array, families: ProxyFamilies, more: boolean): ProxyParse {
  if (buf.length < V2_HEADER_LEN) {
    return more && startsWith(buf, V2_SIGNATURE)
      ? { kind: "more" }
      : error("short protocol header");
  }
  if (!startsWith(buf, V2_SIGNATURE)) return error("unrecognized protocol header");
  const verCmd = buf[12];
  if ((verCmd & 0xf0) !== 0x20) return error("unrecognized protocol version");
  const len = (buf[14] << 8) | buf[15];
  const total = V2_HEADER_LEN + len;
  if (total > HAPROXY_HEADER_MAX_LEN) return error("short version 2 protocol header");
  if (buf.length < total) {
    return more ? { kind: "more" } : error("short version 2 protocol header");
  }
  switch (verCmd & 0x0f) {
    case 0x00:
      return { kind: "local", length: total };
    case 0x01:
      break;
    default:
      return error("bad command in proxy header");
  }
  const fam = buf[13];
  const body = buf.subarray(V2_HEADER_LEN, total);
  const port = (o: number) => (body[o] << 8) | body[o + 1];
  if (fam === 0x11) {
    if (!families.ipv4) return error("Postfix IPv4 support is disabled");
    if (len < 12) return error("short address field");
    return {
      kind: "proxy",
      length: total,
      endpoints: {
        clientAddr: formatIp(body.slice(0, 4)),
        serverAddr: formatIp(body.slice(4, 8)),
        clientPort: port(8),
        serverPort: port(10),
      },
    };
  }
  if (fam === 0x21) {
    if (!families.ipv6) return error("Postfix IPv6 support is disabled");
    if (len < 36) return error("short address field");
    return {
      kind: "proxy",
      length: total,
      endpoints: {
        clientAddr: ipText(body.slice(0, 16), families),
        serverAddr: ipText(body.slice(16, 32), families),
        clientPort: port(32),
        serverPort: port(34),
      },
    };
  }
  return error("unsupported network protocol");
}

function error(reason: string): ProxyParse {
  return { kind: "error", reason };
}

/** An address in Postfix's printed form; IPv4-mapped IPv6 as IPv4 when IPv4 is on. */
function ipText(b: Uint8Array, families: ProxyFamilies): string {
  const mapped = b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff &&
    b[11] === 0xff;
  if (!mapped) return formatIp(b);
  const v4 = [...b.subarray(12)].join(".");
  return families.ipv4 ? v4 : `::ffff:${v4}`;
}

/** A v1 address token of the family, normalized; null if invalid. */
function textAddr(tok: string | undefined, family: 4 | 6, families: ProxyFamilies): string | null {
  if (tok === undefined || tok.length >= 46) return null;
  if (family === 4) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(tok)) return null;
  } else if (!/^[0-9a-fA-F:.]+$/.test(tok) || !tok.includes(":")) return null;
  const b = parseIp(tok);
  if (b === null || b.length !== (family === 4 ? 4 : 16)) return null;
  return ipText(b, families);
}

/** Postfix's valid_hostport: digits, no leading zero, at most 65535. */
function textPort(tok: string | undefined): number | null {
  if (tok === undefined || !/^\d{1,5}$/.test(tok) || (tok.length > 1 && tok[0] === "0")) {
    return null;
  }
  const n = Number(tok);
  return n > 65535 ? null : n;
}

/** Postfix's escape(): printable ASCII as is (backslash doubled), C escapes, else \ooo. */
export function escapeBytes(b: Uint8Array): string {
  const named: Record<number, string> = {
    7: "\\a",
    8: "\\b",
    9: "\\t",
    10: "\\n",
    11: "\\v",
    12: "\\f",
    13: "\\r",
  };
  let s = "";
  for (const c of b) {
    if (c >= 0x20 && c < 0x7f) s += c === 0x5c ? "\\\\" : String.fromCharCode(c);
    else s += named[c] ?? `\\${c.toString(8).padStart(3, "0")}`;
  }
  return s;
}

/** The result of reading a proxy header from a connection. */
export type ProxyRead =
  | {
    ok: true;
    header: Exclude<ProxyParse, { kind: "more" } | { kind: "error" }>;
    rest: Uint8Array;
  }
  /** `warning` is the text after "warning: " in Postfix's log line. */
  | { ok: false; warning: string };

/**
 * Reads a proxy header: chunks from `read` until the header is complete,
 * bad, or `timeoutMs` has passed. Bytes after the header are returned as
 * `rest` for the SMTP session. On timeout the pending read is left for
 * the caller to settle by closing the connection.
 */
export async function readProxyHeader(
  read: () => Promise<Uint8Array | null>,
  opts: { timeoutMs: number; families: ProxyFamilies },
): Promise<ProxyRead> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((res) => {
    timer = setTimeout(() => res("timeout"), opts.timeoutMs);
  });
  let buf = new Uint8Array(0);
  try {
    for (;;) {
      const pending = read();
      pending.catch(() => {}); // settled by the caller closing the connection
      const chunk = await Promise.race([pending, timeout]);
      if (chunk === "timeout") return { ok: false, warning: "haproxy read: timeout error" };
      if (chunk === null && buf.length === 0) return { ok: false, warning: "haproxy read: EOF" };
      if (chunk !== null) {
        const next = new Uint8Array(buf.length + chunk.length);
        next.set(buf);
        next.set(chunk, buf.length);
        buf = next;
      }
      const r = parseProxyHeader(buf, opts.families, chunk === null);
      if (r.kind === "more") continue;
      if (r.kind === "error") {
        const seen = buf.subarray(0, HAPROXY_HEADER_MAX_LEN);
        return { ok: false, warning: `haproxy read: ${r.reason}: ${escapeBytes(seen)}` };
      }
      return { ok: true, header: r, rest: buf.slice(r.length) };
    }
  } catch (e) {
    return { ok: false, warning: `haproxy read: ${(e as Error).message}` };
  } finally {
    clearTimeout(timer);
  }
}
