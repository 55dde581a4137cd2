/**
 * The MTA-STS policy file (RFC 8461 section 3.2), served at
 * "https://mta-sts.<domain>/.well-known/mta-sts.txt":
 *
 *     version: STSv1
 *     mode: enforce
 *     mx: mail.example.com
 *     mx: *.example.net
 *     max_age: 604800
 *
 * {@link parseStsPolicy} reads it strictly: lines end in LF or CRLF (a
 * bare CR, NUL or other control character anywhere makes the policy
 * invalid, so a value cannot smuggle in a second field), each line is
 * "name: value" with a field name of the ABNF, version must be STSv1,
 * mode one of enforce, testing, none, max_age 1 to 10 digits and at most
 * 31557600 (one year), every mx an ASCII domain name with an optional
 * "*." in front; mx is required unless the mode is none. Of a field
 * given twice (but mx) the first counts. Unknown fields are checked and
 * ignored. Blank lines are tolerated (the ABNF has none; policies in the
 * wild end in several). More than 64 KiB is refused (section 3.3).
 *
 * {@link mxMatchesPolicy} is section 4.1's match of an MX host against
 * the mx patterns: lib/dane's hostnameMatches, whose wildcard stands for
 * exactly one label.
 *
 * @module
 */
import { hostnameMatches } from "../dane/cert.ts";
import { trimWsp } from "./record.ts";

/** A policy that cannot be used; the message says why. */
export class StsPolicyError extends Error {
  override readonly name = "StsPolicyError";
}

/** A parsed MTA-STS policy. */
export interface StsPolicy {
  mode: "enforce" | "testing" | "none";
  /** The mx patterns, lower case: "mail.example.com", "*.example.net". */
  mx: string[];
  /** Seconds the policy may be cached. */
  maxAge: number;
}

/** The largest policy file a sender reads (RFC 8461 3.3). */
export const MAX_POLICY_SIZE = 64 * 1024;
/** The largest max_age (RFC 8461 3.2: 31557600 seconds, about a year). */
export const MAX_AGE_LIMIT = 31_557_600;

const LABEL = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);

/** An ASCII domain name, as RFC 5321's Domain: letters, digits, inner hyphens, no trailing dot. */
export function isDomainName(s: string): boolean {
  return s.length <= 253 && DOMAIN.test(s);
}

/** Parses a policy file; throws {@link StsPolicyError} with the reason. */
export function parseStsPolicy(text: string): StsPolicy {
  if (new TextEncoder().encode(text).length > MAX_POLICY_SIZE) {
    throw new StsPolicyError(`policy larger than ${MAX_POLICY_SIZE} octets`);
  }
  const fields = new Map<string, string>();
  const mx: string[] = [];
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    if (line === "") continue;
    const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):(.*)$/s.exec(line);
    if (!m) {
      throw new StsPolicyError(
        `line ${i + 1}: not "name: value": ${JSON.stringify(line.slice(0, 80))}`,
      );
    }
    // A bare CR, NUL, ...: no value may carry a line break the split above did not see.
    if (/[^\P{Cc}\t]/u.test(m[2])) throw new StsPolicyError(`line ${i + 1}: control character`);
    const [, name, raw] = m;
    const value = trimWsp(raw);
    if (value === "") throw new StsPolicyError(`line ${i + 1}: no value for ${name}`);
    if (name === "mx") {
      const domain = value.replace(/^\*\./, "");
      if (!isDomainName(domain)) throw new StsPolicyError(`line ${i + 1}: bad mx "${value}"`);
      mx.push(value.toLowerCase());
    } else if (!fields.has(name)) fields.set(name, value);
  }
  const version = fields.get("version");
  if (version !== "STSv1") {
    throw new StsPolicyError(
      version === undefined ? "no version" : `version "${version}" is not STSv1`,
    );
  }
  const mode = fields.get("mode");
  if (mode !== "enforce" && mode !== "testing" && mode !== "none") {
    throw new StsPolicyError(mode === undefined ? "no mode" : `unknown mode "${mode}"`);
  }
  const age = fields.get("max_age");
  if (age === undefined) throw new StsPolicyError("no max_age");
  if (!/^\d{1,10}$/.test(age) || Number(age) > MAX_AGE_LIMIT) {
    throw new StsPolicyError(`bad max_age "${age}" (0 to ${MAX_AGE_LIMIT} seconds)`);
  }
  if (mx.length === 0 && mode !== "none") throw new StsPolicyError(`no mx with mode ${mode}`);
  return { mode, mx, maxAge: Number(age) };
}

/** RFC 8461 4.1: whether an MX host is one the policy names (see the module comment). */
export function mxMatchesPolicy(policy: StsPolicy, mxHost: string): boolean {
  return policy.mx.some((pattern) => hostnameMatches(pattern, mxHost));
}

/** The policy as its lines, as a TLS-RPT report's "policy-string" gives it (RFC 8460 4.4). */
export function stsPolicyLines(policy: StsPolicy): string[] {
  return [
    "version: STSv1",
    `mode: ${policy.mode}`,
    ...policy.mx.map((m) => `mx: ${m}`),
    `max_age: ${policy.maxAge}`,
  ];
}
