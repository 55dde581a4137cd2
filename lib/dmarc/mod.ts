/**
 * DMARC, Domain-based Message Authentication, Reporting and Conformance
 * (RFC 7489): does the domain in a message's From field vouch for it,
 * through an SPF or DKIM pass aligned with it, and what does the domain
 * ask receivers to do when it does not?
 *
 * {@link authorDomain} takes the From domain from the From header field
 * (section 6.6.1, refusing what is ambiguous: no From, several, a group,
 * several addresses, nothing that parses). {@link checkDmarc} discovers
 * the policy record at _dmarc.<domain> or at the organizational domain's
 * (section 6.6.3) through an injected resolver, checks relaxed or strict
 * alignment of the SPF and DKIM results it is given, and returns the
 * result (pass, fail, none, temperror, permerror) with the disposition
 * the policy asks for after pct sampling. {@link parseDmarcRecord} and
 * {@link organizationalDomain} (Public Suffix List, private domains
 * included) are exported for reports and tests.
 *
 * A library, not a policy: it does not verify SPF or DKIM (lib/spf does
 * the one, the caller brings the other), does not reject or quarantine,
 * does not send aggregate (rua) or failure (ruf) reports or check their
 * external-destination authorization (section 7.1), keeps no state and
 * no cache, and does not implement the DMARCbis tree walk, np= or t=.
 *
 * Files: record.ts (record syntax), domain.ts (author and organizational
 * domains), check.ts (discovery, alignment, disposition).
 *
 * @example
 * ```ts
 * import { systemResolver } from "../dns/mod.ts";
 * import { authorDomain, checkDmarc } from "./mod.ts";
 *
 * const author = authorDomain(["Joe <joe@example.com>"]);
 * if ("domain" in author) {
 *   const r = await checkDmarc({
 *     fromDomain: author.domain,
 *     spf: { result: "pass", domain: "bounces.example.com" },
 *     dkim: [{ result: "pass", domain: "example.com" }],
 *     resolver: systemResolver({ timeoutMs: 5000 }),
 *   });
 *   if (r.disposition === "reject") console.log(`550 5.7.1 DMARC: ${r.reason}`);
 * }
 * ```
 *
 * @module
 */
export { checkDmarc, type DmarcInput, type DmarcResult } from "./check.ts";
export { authorDomain, organizationalDomain } from "./domain.ts";
export {
  type DmarcPolicy,
  type DmarcRecord,
  DmarcSyntaxError,
  isDmarcRecord,
  parseDmarcRecord,
} from "./record.ts";
