/**
 * NAME
 *   etrn - the ETRN command (RFC 1985), answered as Postfix answers it
 *   without a fast flush service
 *
 * SUMMARY
 *   Postfix hands ETRN to its flush(8) service, which only serves domains
 *   in fast_flush_domains; for any other domain the answer is
 *   "459 <domain>: service unavailable" with a warning in the log. That is
 *   Postfix's answer for every domain in its default configuration
 *   (fast_flush_domains = $relay_domains, empty at compatibility level 3.6),
 *   and Postwarden's for every domain: it has no flush service, so ETRN
 *   never starts a delivery. Mail waiting for the domain is retried on the
 *   deferred queue's schedule as usual.
 *
 * DESCRIPTION
 *   Pure. Checks in Postfix's order (smtpd.c etrn_cmd): HELO required,
 *   no mail transaction, exactly one argument, a leading "@" or "#"
 *   dropped, a host name or an address literal. Replies carry no enhanced
 *   status code, as Postfix's. smtpd_etrn_restrictions are not evaluated:
 *   a non-empty value stops the start (lib/config/params.ts).
 *
 * PARAMETERS
 *   smtpd_helo_required (no), through the session.
 */
import { validHostname } from "./restrictions.ts";
import { smtpdTokens, validMailhostAddr } from "./xclient.ts";

/** The reply line and, for a refused domain, the log warning (without " from client"). */
export interface EtrnReply {
  reply: string;
  warning?: string;
}

/** Answers `ETRN arg`. */
export function etrnReply(
  arg: string,
  state: { heloRequired: boolean; inTransaction: boolean },
): EtrnReply {
  if (state.heloRequired) return { reply: "503 Error: send HELO/EHLO first" };
  if (state.inTransaction) return { reply: "503 Error: MAIL transaction in progress" };
  const args = smtpdTokens(arg);
  if (args.length !== 1) return { reply: "500 Syntax: ETRN domain" };
  let domain = args[0];
  if (domain.startsWith("@") || domain.startsWith("#")) domain = domain.slice(1);
  const literal = /^\[(.*)\]$/.exec(domain);
  if (!validHostname(domain) && !(literal && validMailhostAddr(literal[1]) !== null)) {
    return { reply: "501 Error: invalid parameter syntax" };
  }
  return {
    reply: `459 <${domain}>: service unavailable`,
    warning: `reject: ETRN ${domain.slice(0, 100)}...`,
  };
}
