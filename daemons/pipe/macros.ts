/**
 * pipe(8)'s command-line macros: `${name}`, `$name` and `$(name)` in the
 * argv= elements of a pipe service, `$$` for a single "$". Pure.
 *
 * An element that names a per-recipient macro (${recipient}, ${user},
 * ${extension}, ${mailbox}, ${domain}, ${original_recipient}) becomes one
 * element per recipient; an element whose ${user} is empty for a
 * recipient (`+ext@host`) is left out for that recipient, as Postfix does
 * for Cyrus bulletin boards. The flags q (quote the local part as RFC 5322
 * does), u (lowercase the local part) and h (lowercase the domain and
 * ${nexthop}) apply as pipe(8) says. An unknown macro expands to nothing,
 * as in Postfix. ${client_port} and the ${sasl_*} macros are refused when
 * the service is read (lib/pipe): the queue file does not keep them.
 *
 * Every expansion is one argv element passed to the program directly: no
 * shell ever sees it, so spaces, quotes, `;`, `|` or a leading "-" in an
 * address stay data. (A leading "-" can still be taken for an option by
 * the program itself: write `-- ${recipient}` in argv= where the program
 * supports it, as pipe(8) advises for ${sender}.)
 */
import { quoteLocal, splitAddress, splitExtension } from "../../lib/address/mod.ts";

/** What the macros expand to for one delivery request. */
export interface MacroValues {
  /** Envelope sender with null_sender already applied. */
  sender: string;
  nexthop: string;
  size: number;
  queueId: string;
  clientAddress: string;
  clientHelo: string;
  clientHostname: string;
  clientProtocol: string;
  /** The request's recipients: address and original (pre-rewriting) address. */
  recipients: { address: string; original: string }[];
  /** recipient_delimiter (for ${user} and ${extension}). */
  delimiters: string;
  /** The service's flags (only h, q, u matter here). */
  flags: Set<string>;
}

const PER_RECIPIENT = new Set([
  "recipient",
  "user",
  "extension",
  "mailbox",
  "domain",
  "original_recipient",
]);

/** One piece of a parsed argv element: literal text or a macro name. */
type Piece = { text: string } | { macro: string };

/** Splits an argv element into literal text and macro references. */
export function parseMacros(element: string): Piece[] {
  const out: Piece[] = [];
  let lit = "";
  for (let i = 0; i < element.length; i++) {
    const c = element[i];
    if (c !== "$" || i + 1 >= element.length) {
      lit += c;
      continue;
    }
    const n = element[i + 1];
    let name: string | null = null;
    let end = i;
    if (n === "$") {
      lit += "$";
      i++;
      continue;
    } else if (n === "{" || n === "(") {
      const close = element.indexOf(n === "{" ? "}" : ")", i + 2);
      if (close > 0) {
        name = element.slice(i + 2, close);
        end = close;
      }
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(element.slice(i + 1));
      if (m) {
        name = m[0];
        end = i + m[0].length;
      }
    }
    if (name === null) {
      lit += c;
      continue;
    }
    if (lit) out.push({ text: lit });
    lit = "";
    out.push({ macro: name });
    i = end;
  }
  if (lit) out.push({ text: lit });
  return out;
}

/** The address with the q, u and h flags applied (Postfix's morph_recipient). */
function morph(address: string, flags: Set<string>, quote: boolean): string {
  let { local, domain } = splitAddress(address);
  const hasAt = address.lastIndexOf("@") >= 0;
  if (quote && flags.has("q")) local = quoteLocal(local);
  if (flags.has("u")) local = local.toLowerCase();
  if (flags.has("h")) domain = domain.toLowerCase();
  return hasAt ? `${local}@${domain}` : local;
}

/** Expands the argv= template for a request. */
export function expandArgv(template: string[], v: MacroValues): string[] {
  const sender = v.sender !== "" && v.flags.has("q") ? quoteSender(v.sender) : v.sender;
  const fixed: Record<string, string> = {
    sender,
    nexthop: v.flags.has("h") ? v.nexthop.toLowerCase() : v.nexthop,
    size: String(v.size),
    queue_id: v.queueId,
    client_address: v.clientAddress,
    client_helo: v.clientHelo,
    client_hostname: v.clientHostname,
    client_protocol: v.clientProtocol,
  };
  const out: string[] = [];
  for (const element of template) {
    const pieces = parseMacros(element);
    const perRecipient = pieces.some((p) => "macro" in p && PER_RECIPIENT.has(p.macro));
    if (!perRecipient) {
      out.push(pieces.map((p) => "text" in p ? p.text : fixed[p.macro] ?? "").join(""));
      continue;
    }
    for (const r of v.recipients) {
      const values = recipientValues(r, v);
      if (pieces.some((p) => "macro" in p && p.macro === "user") && values.user === "") continue;
      out.push(
        pieces.map((p) => "text" in p ? p.text : values[p.macro] ?? fixed[p.macro] ?? "").join(""),
      );
    }
  }
  return out;
}

function quoteSender(sender: string): string {
  const { local, domain } = splitAddress(sender);
  return sender.lastIndexOf("@") >= 0 ? `${quoteLocal(local)}@${domain}` : quoteLocal(local);
}

/** The per-recipient macros of one recipient. */
function recipientValues(
  r: { address: string; original: string },
  v: MacroValues,
): Record<string, string> {
  const fold = new Set([...v.flags].filter((f) => f === "u" || f === "h"));
  const plain = morph(r.address, fold, false);
  const { local, domain } = splitAddress(plain);
  const { user, extension } = splitExtension(local, v.delimiters);
  return {
    recipient: morph(r.address, v.flags, true),
    original_recipient: morph(r.original, v.flags, true),
    mailbox: local,
    user,
    extension: extension.slice(1),
    domain,
  };
}
