/**
 * The Received-SPF header field of RFC 7208 section 9.1: the result, a
 * comment saying it in words, and key-value pairs (client-ip,
 * envelope-from, helo, receiver, identity, and mechanism or problem).
 *
 * Everything that came from the sender or from DNS is made safe for a
 * header line: control characters (CR and LF among them) become spaces,
 * comment text has "(", ")" and "\" escaped, a value that is not a
 * dot-atom is a quoted-string, and the problem text is shortened. The
 * value is one line; a header writer may fold it after any "; ".
 *
 * Pure: no I/O.
 *
 * @module
 */
import type { SpfResult } from "./check.ts";

/** What the header says besides the result. */
export interface ReceivedSpfContext {
  /** The client's address (client-ip). */
  ip: string;
  /** The MAIL FROM address as received; "" (the null sender) or absent: no envelope-from. */
  envelopeFrom?: string;
  /** The HELO/EHLO name. */
  helo?: string;
  /** This host's name: the receiver key, and who says so in the comment. */
  receiver?: string;
  /** The identity that was checked. @default "mailfrom" */
  identity?: "mailfrom" | "helo";
}

/** Longest problem text put in the header, in characters. */
const MAX_PROBLEM = 200;

/**
 * The Received-SPF header value (without the "Received-SPF:" name), e.g.
 * `pass (mx.example.org: domain of joe@example.com designates 192.0.2.1 as
 * permitted sender) client-ip=192.0.2.1; envelope-from="joe@example.com";
 * helo=mail.example.com; receiver=mx.example.org; identity=mailfrom;
 * mechanism="ip4:192.0.2.0/24";`
 */
export function receivedSpfHeader(result: SpfResult, ctx: ReceivedSpfContext): string {
  const identity = ctx.identity ?? "mailfrom";
  const helo = ctx.helo ?? "";
  const who = identity === "helo"
    ? helo || result.domain
    : ctx.envelopeFrom || `postmaster@${helo || result.domain}`;
  const ip = ctx.ip;
  const words: Record<SpfResult["result"], string> = {
    pass: `domain of ${who} designates ${ip} as permitted sender`,
    fail: `domain of ${who} does not designate ${ip} as permitted sender`,
    softfail: `domain of transitioning ${who} does not designate ${ip} as permitted sender`,
    neutral: `${ip} is neither permitted nor denied by domain of ${who}`,
    none: `domain of ${who} does not designate permitted sender hosts`,
    permerror: `permanent error in processing domain of ${who}`,
    temperror: `temporary error in processing domain of ${who}`,
  };
  const comment = (ctx.receiver ? `${ctx.receiver}: ` : "") + words[result.result];
  const pairs: [string, string][] = [["client-ip", ip]];
  if (ctx.envelopeFrom) pairs.push(["envelope-from", ctx.envelopeFrom]);
  if (helo) pairs.push(["helo", helo]);
  if (ctx.receiver) pairs.push(["receiver", ctx.receiver]);
  pairs.push(["identity", identity]);
  if (result.result === "permerror" || result.result === "temperror") {
    if (result.problem) pairs.push(["problem", shorten(result.problem)]);
  } else if (result.result !== "none") {
    pairs.push(["mechanism", result.mechanism ?? "default"]);
  }
  const list = pairs.map(([k, v]) => `${k}=${headerValue(v)};`).join(" ");
  return `${result.result} (${commentText(comment)}) ${list}`;
}

/** Control characters (CR, LF, TAB, NUL, DEL ...) as single spaces. */
function oneLine(s: string): string {
  // deno-lint-ignore no-control-regex
  return s.replace(/[\x00-\x1f\x7f]+/g, " ");
}

function shorten(s: string): string {
  return s.length > MAX_PROBLEM ? `${s.slice(0, MAX_PROBLEM - 3)}...` : s;
}

/** Comment content: "(", ")" and "\" as quoted-pairs. */
function commentText(s: string): string {
  return oneLine(s).replace(/[()\\]/g, (c) => `\\${c}`);
}

/** RFC 5322 dot-atom-text. */
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;

/** A dot-atom as is, anything else as a quoted-string. */
function headerValue(s: string): string {
  const v = oneLine(s);
  return DOT_ATOM.test(v) ? v : `"${v.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
