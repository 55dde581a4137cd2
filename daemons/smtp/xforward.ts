/**
 * XFORWARD (Postfix's XFORWARD_README) from the SMTP client side, with
 * smtp_send_xforward_command = yes and a server that offers it: the
 * original client's attributes go before MAIL FROM, so that a content
 * filter's re-injection (an smtpd with smtpd_authorized_xforward_hosts)
 * logs and stamps the real client rather than the filter. Two commands in
 * Postfix's order: `XFORWARD NAME= ADDR= PORT=`, then `XFORWARD PROTO=
 * HELO= IDENT= SOURCE=`, each with only the attributes the server
 * announced, values xtext-encoded, "[UNAVAILABLE]" for what the queue file
 * does not know. IDENT is the local queue id (the next hop logs it as
 * orig_queue_id=); SOURCE is LOCAL for local submission and REMOTE for
 * mail from an SMTP client. When the message itself came with XFORWARD
 * (through an earlier filter), those attributes are forwarded instead.
 * No I/O.
 */
import type { Envelope } from "../../lib/queue/mod.ts";
import { xtextEncode } from "../../lib/mime/mod.ts";

const UNAVAILABLE = "[UNAVAILABLE]";

/** The XFORWARD commands (with CRLF) for one message; none when the server offers no attribute. */
export function xforwardCommands(env: Envelope, offered: string): string[] {
  const words = new Set(offered.toUpperCase().split(/\s+/).filter((w) => w !== ""));
  const a = env.attrs ?? {};
  const x = a.xforward;
  const smtp = a.origin === "smtpd";
  // What an upstream XFORWARD said replaces the connection's attributes as a whole.
  const own = smtp && !x;
  let addr = x ? x.addr : own ? a.clientAddr : undefined;
  if (addr !== undefined && addr.includes(":") && !/^ipv6:/i.test(addr)) addr = `IPv6:${addr}`;
  const source = x ? x.source : own ? "remote" : a.origin ? "local" : undefined;
  const values: Record<string, string | undefined> = {
    NAME: x ? x.name : own ? a.clientName : undefined,
    ADDR: addr,
    PORT: x?.port,
    PROTO: x ? x.protocol : own ? a.protocol : undefined,
    HELO: x ? x.helo : own ? a.helo : undefined,
    IDENT: env.queueId,
    SOURCE: source?.toUpperCase(),
  };
  const command = (names: string[]) => {
    const parts = names.filter((n) => words.has(n)).map((n) => {
      const v = values[n];
      return `${n}=${v === undefined || v === "" ? UNAVAILABLE : xtextEncode(v)}`;
    });
    return parts.length ? [`XFORWARD ${parts.join(" ")}\r\n`] : [];
  };
  return [...command(["NAME", "ADDR", "PORT"]), ...command(["PROTO", "HELO", "IDENT", "SOURCE"])];
}
