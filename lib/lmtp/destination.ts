/**
 * LMTP next hops, as Postfix's lmtp(8) reads them ("LMTP DESTINATION
 * SYNTAX"): a list of destinations separated by commas or white space,
 * each one of
 *
 * - `unix:pathname`: a UNIX-domain server; a relative pathname is taken
 *   relative to queue_directory (where Postfix's daemons run), so
 *   `unix:private/dovecot-lmtp` is `$queue_directory/private/dovecot-lmtp`.
 * - `inet:host`, `inet:host:port`, `inet:[address]`, `inet:[address]:port`,
 *   or the same without `inet:`: a TCP server; the port defaults to
 *   lmtp_tcp_port (24). There are no MX lookups for LMTP: a host name is
 *   looked up for its addresses only, bracketed or not.
 *
 * Pure: parsing only; daemons/lmtp/lmtp.ts connects, lib/permissions
 * (lmtp.ts) grants what the parsed destinations name.
 *
 * @module
 */
import { ipLiteral } from "../dns/mod.ts";

/** One parsed LMTP destination. */
export type LmtpDestination =
  | {
    kind: "unix";
    /** The path as configured, for logs (`relay=host[private/dovecot-lmtp]`). */
    path: string;
    /** The path to connect to: absolute, relative ones under queue_directory. */
    socket: string;
  }
  | {
    kind: "inet";
    /** Host name (lowercase, no trailing dot) or IP address. */
    host: string;
    port: number;
  };

/** A next hop that cannot be parsed: the transport's configuration is wrong. */
export class LmtpNexthopError extends Error {
  override readonly name = "LmtpNexthopError";
}

/**
 * Parses an LMTP next hop (one or more destinations); `defaultPort` is
 * lmtp_tcp_port (null when that is no port). Throws
 * {@link LmtpNexthopError} for an empty next hop, an empty path or a bad
 * port.
 */
export function parseLmtpNexthop(
  text: string,
  opts: { queueDir: string; defaultPort: number | null },
): LmtpDestination[] {
  const items = text.split(/[\s,]+/).filter((s) => s !== "");
  if (items.length === 0) throw new LmtpNexthopError("empty LMTP destination");
  return items.map((item) => parseOne(item, opts));
}

function parseOne(
  item: string,
  opts: { queueDir: string; defaultPort: number | null },
): LmtpDestination {
  const lower = item.toLowerCase();
  if (lower.startsWith("unix:")) {
    const path = item.slice("unix:".length);
    if (path === "") throw new LmtpNexthopError(`empty pathname in destination "${item}"`);
    if (path.includes("\0")) throw new LmtpNexthopError(`bad pathname in destination "${item}"`);
    const socket = path.startsWith("/") ? path : `${opts.queueDir.replace(/\/+$/, "")}/${path}`;
    return { kind: "unix", path, socket };
  }
  const rest = lower.startsWith("inet:") ? item.slice("inet:".length) : item;
  // [address] or [host], with an optional :port; else host or host:port; else an IPv6 address.
  const m = /^\[([^\]]+)\](?::([^:]*))?$/.exec(rest) ?? /^([^:\[\]]+)(?::([^:]*))?$/.exec(rest);
  const bare = m ? null : ipLiteral(rest);
  if (!m && !(bare && bare.includes(":"))) {
    throw new LmtpNexthopError(`bad destination "${item}"`);
  }
  const name = m ? m[1] : rest;
  const host = ipLiteral(`[${name}]`) ?? name.toLowerCase().replace(/\.$/, "");
  if (host === "") throw new LmtpNexthopError(`empty host in destination "${item}"`);
  return { kind: "inet", host, port: portOf(m?.[2], opts.defaultPort, item) };
}

function portOf(text: string | undefined, def: number | null, item: string): number {
  if (text === undefined) {
    if (def === null) {
      throw new LmtpNexthopError(`no port in destination "${item}" and lmtp_tcp_port is no port`);
    }
    return def;
  }
  if (text.toLowerCase() === "lmtp") return 24;
  const p = Number(text);
  if (!/^\d+$/.test(text) || p < 1 || p > 65535) {
    throw new LmtpNexthopError(`bad port in destination "${item}"`);
  }
  return p;
}

/** lmtp_tcp_port as a port number: digits, or the service name lmtp; null when neither. */
export function lmtpTcpPort(value: string): number | null {
  const v = value.trim();
  if (v.toLowerCase() === "lmtp") return 24;
  const p = Number(v);
  return /^\d+$/.test(v) && p >= 1 && p <= 65535 ? p : null;
}

export { UNIX_PATH_MAX } from "../ipc/mod.ts";
