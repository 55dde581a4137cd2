/**
 * NAME
 *   xclient - XCLIENT and XFORWARD attribute parsing and authorization
 *
 * SUMMARY
 *   XCLIENT lets an authorized client (a content filter, a test harness)
 *   replace the client identity of the session: name, address, port,
 *   HELO, protocol and login; the session then restarts with the new
 *   identity, so restrictions and logs use it. XFORWARD lets an authorized
 *   client (an upstream Postfix or filter) pass the original client's
 *   attributes along with the next message, for logging and for the queue
 *   file; the Received header and the restrictions keep the real client.
 *
 * DESCRIPTION
 *   Pure: parses a command's arguments into the attributes it sets, or
 *   Postfix's 501 reply, as smtpd.c xclient_cmd/xforward_cmd. Arguments
 *   are split as Postfix's smtpd_token does (a "quoted string" is one
 *   word), values are xtext-decoded when they are valid xtext (Postfix
 *   before 2.3 sent them raw), longer than 255 characters is an error,
 *   and characters outside printable ASCII become "?". Values that end up
 *   in headers or logs (HELO, and XFORWARD's NAME, ADDR, HELO, PROTO,
 *   IDENT) have " <>()\";@" and spaces censored to "?", as Postfix's
 *   neuter(). "[UNAVAILABLE]" and "[TEMPUNAVAIL]" say the attribute is not
 *   known ("unknown", or none for HELO and LOGIN).
 *
 *   The authorization lists are network lists
 *   (lib/config/network_list.ts): addresses, networks and host names.
 *
 * PARAMETERS
 *   smtpd_authorized_xclient_hosts (empty), smtpd_authorized_xforward_hosts
 *   (empty).
 */
import type { Config } from "../../lib/config/mod.ts";
import {
  matchNetworkList,
  type NetworkList,
  parseIp,
  parseNetworkList,
} from "../../lib/config/network_list.ts";
import { xtextDecode } from "../../lib/mime/mod.ts";
import { validHostname } from "./restrictions.ts";

const UNAVAILABLE = "[UNAVAILABLE]";
const TEMPUNAVAIL = "[TEMPUNAVAIL]";
const UNKNOWN = "unknown";

/** Who may send XCLIENT and XFORWARD. */
export interface XclientAuth {
  xclient: NetworkList;
  xforward: NetworkList;
}

/** The authorization lists of a configuration (errors stop the start: lib/config/support.ts). */
export function xclientAuth(c: Config): XclientAuth {
  return {
    xclient: parseNetworkList(
      "smtpd_authorized_xclient_hosts",
      c.list("smtpd_authorized_xclient_hosts"),
    ),
    xforward: parseNetworkList(
      "smtpd_authorized_xforward_hosts",
      c.list("smtpd_authorized_xforward_hosts"),
    ),
  };
}

/** Whether the client is on the list; a list item that cannot be matched never authorizes. */
export function authorized(list: NetworkList, client: { name: string; addr: string }): boolean {
  return matchNetworkList(list, client) === true;
}

/** A command refused for its arguments: Postfix's 501 reply text (code 501, 5.5.4). */
export interface AttrError {
  ok: false;
  text: string;
}

/** What a valid XCLIENT command sets. Absent: unchanged. */
export interface XclientUpdate {
  /** Client name; "unknown" when unavailable. */
  name?: string;
  /** Whether the name lookup failed temporarily ([TEMPUNAVAIL]) rather than for good. */
  nameTemporary?: boolean;
  reverseName?: string;
  /** Client address without its "IPv6:" tag; "unknown" when unavailable. */
  addr?: string;
  /** Client port; 0 when unavailable. */
  port?: number;
  /** HELO name; null when unavailable (no HELO). */
  helo?: string | null;
  /** "SMTP" or "ESMTP". */
  protocol?: string;
  /** SASL login name; null when unavailable (not logged in). */
  login?: string | null;
  destAddr?: string;
  destPort?: number;
}

/** What XFORWARD carries (Postfix's state->xforward). */
export interface XforwardAttrs {
  name: string;
  addr: string;
  port: string;
  /** null: not known. */
  helo: string | null;
  protocol: string;
  /** The upstream queue id; null: not known. */
  ident: string | null;
  /** Whether the upstream client was local (header rewriting context); null: not said. */
  source: "local" | "remote" | null;
  /** Which attributes were sent (not just preset): NAME, ADDR, PORT, ... */
  sent: Set<string>;
}

/** Postfix's smtpd_token: words split on blanks; a "quoted string" (backslash escapes) is one word. */
export function smtpdTokens(arg: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < arg.length) {
    while (i < arg.length && (arg[i] === " " || arg[i] === "\t")) i++;
    if (i >= arg.length) break;
    let word = "";
    let quoted = false;
    while (i < arg.length && (quoted || (arg[i] !== " " && arg[i] !== "\t"))) {
      const c = arg[i];
      if (quoted && c === "\\" && i + 1 < arg.length) {
        word += c + arg[i + 1];
        i += 2;
        continue;
      }
      if (c === '"') quoted = !quoted;
      word += c;
      i++;
    }
    out.push(word);
  }
  return out;
}

/** Postfix's printable(): anything but printable ASCII becomes "?". */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?");
}

/** Postfix's neuter() with NEUTER_CHARACTERS: what could break a header or a log line. */
function neuter(s: string): string {
  return s.replace(/[ <>()\\";@]/g, "?");
}

/** Postfix's valid_mailhost_addr: IPv4, or IPv6 with its "IPv6:" tag; the bare address or null. */
export function validMailhostAddr(value: string): string | null {
  if (/^ipv6:/i.test(value)) {
    const bare = value.slice(5);
    return /^[0-9a-fA-F:.]+$/.test(bare) && bare.includes(":") && parseIp(bare)?.length === 16
      ? bare
      : null;
  }
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(value) && parseIp(value)?.length === 4 ? value : null;
}

/** PORT: up to five digits (Postfix does not check the range). */
function validPort(value: string): boolean {
  return /^\d{1,5}$/.test(value);
}

/** Splits and decodes attribute=value words, or the 501 reply for the first bad one. */
function attributes(arg: string): { name: string; value: string }[] | AttrError {
  const out: { name: string; value: string }[] = [];
  for (const word of smtpdTokens(arg)) {
    const eq = word.indexOf("=");
    if (eq < 0 || eq === word.length - 1) {
      return { ok: false, text: "Error: attribute=value expected" };
    }
    const raw = word.slice(eq + 1);
    if (raw.length > 255) return { ok: false, text: "Error: attribute value too long" };
    let value: string;
    try {
      value = xtextDecode(raw);
    } catch {
      value = raw; // not xtext: a pre-2.3 Postfix sends values as they are
    }
    out.push({ name: word.slice(0, eq), value: printable(value) });
  }
  return out;
}

const bad = (attr: string, value: string): AttrError => ({
  ok: false,
  text: `Bad ${attr} syntax: ${value}`,
});

/** Parses XCLIENT's arguments (at least one attribute=value). */
export function parseXclient(arg: string): { ok: true; update: XclientUpdate } | AttrError {
  const attrs = attributes(arg);
  if (!Array.isArray(attrs)) return attrs;
  const u: XclientUpdate = {};
  for (const { name, value } of attrs) {
    const unavailable = value.toUpperCase() === UNAVAILABLE;
    switch (name.toUpperCase()) {
      case "NAME":
      case "REVERSE_NAME": {
        const temp = value.toUpperCase() === TEMPUNAVAIL;
        let v = value;
        if (unavailable || temp) v = UNKNOWN;
        else if (!validHostname(v)) return bad(name.toUpperCase(), value);
        if (name.toUpperCase() === "NAME") {
          u.name = v;
          u.nameTemporary = temp;
        } else u.reverseName = v;
        break;
      }
      case "ADDR":
      case "DESTADDR": {
        const bare = unavailable ? UNKNOWN : validMailhostAddr(value);
        if (bare === null) return bad(name.toUpperCase(), value);
        if (name.toUpperCase() === "ADDR") u.addr = bare;
        else u.destAddr = bare;
        break;
      }
      case "PORT":
      case "DESTPORT": {
        if (!unavailable && !validPort(value)) return bad(name.toUpperCase(), value);
        const port = unavailable ? 0 : Number(value);
        if (name.toUpperCase() === "PORT") u.port = port;
        else u.destPort = port;
        break;
      }
      case "HELO":
        if (unavailable) u.helo = null;
        else if (value.length > 255) return bad("HELO", value);
        else u.helo = neuter(value);
        break;
      case "PROTO":
        if (!/^e?smtp$/i.test(value)) return bad("PROTO", value);
        u.protocol = value.toUpperCase();
        break;
      case "LOGIN":
        u.login = unavailable ? null : value;
        break;
      default:
        return { ok: false, text: `Bad XCLIENT attribute name: ${name}` };
    }
  }
  return { ok: true, update: u };
}

/** XFORWARD's state before the first attribute: Postfix's smtpd_xforward_preset. */
export function xforwardPreset(): XforwardAttrs {
  return {
    name: UNKNOWN,
    addr: UNKNOWN,
    port: UNKNOWN,
    helo: null,
    protocol: UNKNOWN,
    ident: null,
    source: null,
    sent: new Set(),
  };
}

/**
 * Parses XFORWARD's arguments into `into` (a copy is returned; `into` is
 * kept as it was when an attribute is bad, as Postfix keeps what earlier
 * commands set).
 */
export function parseXforward(
  arg: string,
  into: XforwardAttrs,
): { ok: true; attrs: XforwardAttrs } | AttrError {
  const attrs = attributes(arg);
  if (!Array.isArray(attrs)) return attrs;
  const x: XforwardAttrs = { ...into, sent: new Set(into.sent) };
  for (const { name, value } of attrs) {
    const unavailable = value.toUpperCase() === UNAVAILABLE;
    const key = name.toUpperCase();
    switch (key) {
      case "NAME": {
        const v = unavailable ? UNKNOWN : neuter(value);
        if (!unavailable && !validHostname(v)) return bad("NAME", v);
        x.name = v;
        break;
      }
      case "ADDR": {
        const v = unavailable ? UNKNOWN : neuter(value);
        const bare = unavailable ? UNKNOWN : validMailhostAddr(v);
        if (bare === null) return bad("ADDR", v);
        x.addr = bare;
        break;
      }
      case "PORT":
        if (!unavailable && !validPort(value)) return bad("PORT", value);
        x.port = unavailable ? UNKNOWN : value;
        break;
      case "HELO":
        x.helo = unavailable ? null : neuter(value);
        break;
      case "PROTO":
        if (!unavailable && value.length > 64) return bad("PROTO", value);
        x.protocol = unavailable ? UNKNOWN : neuter(value);
        break;
      case "IDENT":
        x.ident = unavailable ? null : neuter(value);
        break;
      case "SOURCE": {
        const v = unavailable ? "LOCAL" : value;
        if (!/^(local|remote)$/i.test(v)) return bad("SOURCE", v);
        x.source = v.toLowerCase() as "local" | "remote";
        break;
      }
      default:
        return { ok: false, text: `Bad XFORWARD attribute name: ${name}` };
    }
    x.sent.add(key);
  }
  return { ok: true, attrs: x };
}

/** name[addr] of the forwarded client, or the name alone when its address is not known. */
export function xforwardNamaddr(x: XforwardAttrs): string {
  return x.addr !== UNKNOWN ? `${x.name}[${x.addr}]` : x.name;
}

/** Whether XFORWARD sent any client attribute (Postfix's HAVE_FORWARDED_CLIENT_ATTR). */
export function forwardedClient(x: XforwardAttrs): boolean {
  return ["NAME", "ADDR", "PORT", "PROTO", "HELO"].some((k) => x.sent.has(k));
}
