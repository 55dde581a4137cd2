/**
 * DMARC policy records (RFC 7489 sections 6.3 and 6.4): recognising one
 * among a name's TXT records and parsing it.
 *
 * A record is a DKIM-style tag-list that must begin with "v=DMARC1" (the
 * "v" case-insensitive, "DMARC1" exact). Tag names are case-sensitive and
 * may appear once (RFC 6376 section 3.2: a duplicate makes the whole list
 * invalid); unknown tags are ignored. As section 6.3 asks, a bad value of
 * any tag other than p and sp falls back to the tag's default, and a bad
 * reporting URI is dropped from its list. A missing or invalid p (or an
 * invalid sp) makes the record unusable, unless it has a valid rua, in
 * which case it reads as p=none (section 6.6.3 step 6).
 *
 * Pure: no I/O.
 *
 * @module
 */

/** A DMARC policy: what the domain owner asks receivers to do with failing mail. */
export type DmarcPolicy = "none" | "quarantine" | "reject";

/** A parsed DMARC record, with each tag's default filled in. */
export interface DmarcRecord {
  /** Requested policy for the domain (p). */
  p: DmarcPolicy;
  /** Requested policy for its subdomains (sp); absent: p applies. */
  sp?: DmarcPolicy;
  /** DKIM alignment mode, relaxed or strict (adkim). @default "r" */
  adkim: "r" | "s";
  /** SPF alignment mode (aspf). @default "r" */
  aspf: "r" | "s";
  /** Percentage of failing messages the policy applies to (pct), 0 to 100. @default 100 */
  pct: number;
  /** Where to send aggregate reports (rua): the valid URIs, in order. */
  rua: string[];
  /** Where to send failure reports (ruf): the valid URIs, in order. */
  ruf: string[];
  /** Failure reporting options (fo), e.g. "0" or "1:d", without spaces. @default "0" */
  fo: string;
  /** Failure report formats (rf), e.g. "afrf". @default "afrf" */
  rf: string;
  /** Requested interval between aggregate reports in seconds (ri). @default 86400 */
  ri: number;
  /** The record as published, unchanged (it may hold any characters). */
  raw: string;
}

/** A DMARC record that cannot be used; the message says why. */
export class DmarcSyntaxError extends Error {
  override readonly name = "DmarcSyntaxError";
}

const VERSION = /^[vV][ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)/;
const WSP = /^[ \t\r\n]+|[ \t\r\n]+$/g;
/** tag-spec of RFC 6376 3.2: a name, "=", and a value of VALCHARs in words. */
const TAG_SPEC =
  /^([A-Za-z][A-Za-z0-9_]*)[ \t\r\n]*=[ \t\r\n]*((?:[\x21-\x3a\x3c-\x7e]+(?:[ \t\r\n]+[\x21-\x3a\x3c-\x7e]+)*)?)$/;
const TAG_NAME = /^[A-Za-z][A-Za-z0-9_]*(?=[ \t\r\n]*=)/;
/** dmarc-uri: an RFC 3986 URI (no "," or "!") with an optional size limit. */
const URI =
  /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#[\]@$&'()*+;=]|%[0-9A-Fa-f]{2})*(?:![0-9]+[kmgtKMGT]?)?$/;
const FO = /^[01ds](?:[ \t]*:[ \t]*[01ds])*$/;
const RF =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?::[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const POLICIES: readonly string[] = ["none", "quarantine", "reject"];

/** Whether a TXT record (its strings joined) is a DMARC record, i.e. starts with v=DMARC1. */
export function isDmarcRecord(text: string): boolean {
  return VERSION.test(text.replace(WSP, ""));
}

/**
 * Parses a DMARC record (the strings of one TXT record joined). Throws
 * {@link DmarcSyntaxError} when it does not start with v=DMARC1, repeats a
 * tag, or has no valid p (or an invalid sp) and no valid rua.
 */
export function parseDmarcRecord(text: string): DmarcRecord {
  if (!isDmarcRecord(text)) {
    throw new DmarcSyntaxError("not a DMARC record: it must begin with v=DMARC1");
  }
  const tags = new Map<string, string | null>();
  for (const spec of text.split(";")) {
    const trimmed = spec.replace(WSP, "");
    if (trimmed === "") continue;
    const m = TAG_SPEC.exec(trimmed);
    // Without a valid name the tag cannot be told apart; it is ignored (section 6.3).
    const name = m?.[1] ?? TAG_NAME.exec(trimmed)?.[0];
    if (name === undefined) continue;
    if (tags.has(name)) throw new DmarcSyntaxError(`duplicate tag ${name}=`);
    tags.set(name, m ? m[2] : null); // null: present with an invalid value
  }
  const list = (v: string | null | undefined) =>
    (v ?? "").split(",").map((u) => u.replace(WSP, "")).filter((u) => URI.test(u));
  const policy = (v: string | null | undefined) => {
    const lower = v?.toLowerCase();
    return lower !== undefined && POLICIES.includes(lower) ? lower as DmarcPolicy : undefined;
  };
  const mode = (v: string | null | undefined) => (v?.toLowerCase() === "s" ? "s" : "r");
  const number = (v: string | null | undefined, digits: RegExp, max: number, dflt: number) =>
    v && digits.test(v) && Number(v) <= max ? Number(v) : dflt;

  const rua = list(tags.get("rua"));
  const p = policy(tags.get("p"));
  const sp = policy(tags.get("sp"));
  const problem = p === undefined
    ? (tags.has("p") ? "invalid p= value" : "no p= tag")
    : tags.has("sp") && sp === undefined
    ? "invalid sp= value"
    : undefined;
  if (problem !== undefined && rua.length === 0) {
    throw new DmarcSyntaxError(`${problem}, and no valid rua= to make it p=none`);
  }
  const fo = tags.get("fo");
  const rf = tags.get("rf");
  return {
    p: problem === undefined ? p! : "none",
    ...(problem === undefined && sp !== undefined && { sp }),
    adkim: mode(tags.get("adkim")),
    aspf: mode(tags.get("aspf")),
    pct: number(tags.get("pct"), /^[0-9]{1,3}$/, 100, 100),
    rua,
    ruf: list(tags.get("ruf")),
    fo: fo && FO.test(fo) ? fo.replace(/[ \t]/g, "") : "0",
    rf: rf && RF.test(rf) ? rf.toLowerCase() : "afrf",
    ri: number(tags.get("ri"), /^[0-9]{1,32}$/, 0xffffffff, 86400),
    raw: text,
  };
}
