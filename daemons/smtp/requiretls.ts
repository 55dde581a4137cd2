/**
 * REQUIRETLS (RFC 8689) in the SMTP client: a message whose MAIL FROM
 * had REQUIRETLS (smtpd with postwarden_requiretls = yes; the queue
 * file's attrs.requiretls) goes to a host only when
 *
 * 1. the host is authenticated as the recipient domain's: an MTA-STS
 *    policy in enforce mode names it, or the MX records (for a domain
 *    without MX records, the host's address records) are DNSSEC-signed
 *    (smtp_dns_support_level = dnssec); a next hop the configuration
 *    names ("[host]", relayhost) needs nothing more;
 * 2. the TLS session is authenticated: DANE, or a certificate for the MX
 *    host name (the verify level with match=hostname when the policy
 *    asked for less);
 * 3. the server offers REQUIRETLS after STARTTLS; MAIL FROM then carries
 *    REQUIRETLS.
 *
 * A host that fails 1 or 3 is a permanent failure (5.7.30 "REQUIRETLS
 * support required"): the next MX host is tried, and when none is left
 * the message bounces, with its headers only (daemons/bounce). A failed
 * TLS check is the level's usual failure (4.7.5, the mail waits). The
 * TLS-Required: No header field is not implemented: it would loosen the
 * site's policy at the sender's request; the policy holds.
 *
 * @module
 */
import type { SiteTls } from "../../lib/tls/client_policy.ts";
import type { TrackingResolver } from "./dane.ts";
import type { Nexthop } from "./nexthop.ts";
import { SecurityFailure } from "./security.ts";
import type { Destination } from "./session.ts";

/** The levels that authenticate the server. */
const AUTHENTICATED = new Set(["dane", "verify", "secure"]);

/** The policy of the connection to `dest` for a REQUIRETLS message, or the failure that skips it. */
export function requireTlsSite(o: {
  nexthop: Nexthop;
  dest: Destination;
  /** The lookups' DNSSEC verdicts (null: not asked with the DO bit). */
  dns: TrackingResolver | null;
  /** An MTA-STS policy in enforce mode named this host (mta_sts.ts). */
  enforced: boolean;
  site: SiteTls;
  /** The verify level with match=hostname. */
  verify: () => SiteTls;
}): SiteTls | SecurityFailure {
  if (o.nexthop.mx && !o.enforced) {
    const mx = o.dns?.seen("MX", o.nexthop.host);
    const addr = o.dns?.seen(o.dest.addr.includes(":") ? "AAAA" : "A", o.dest.host);
    const secure = mx ? mx.secure : addr?.secure === true;
    if (!secure) {
      return new SecurityFailure(
        "5.7.30",
        `REQUIRETLS support required, but the MX hosts of ${o.nexthop.host} are authenticated ` +
          "by neither DNSSEC nor MTA-STS",
      );
    }
  }
  return AUTHENTICATED.has(o.site.level) ? o.site : o.verify();
}

/** After STARTTLS and EHLO: the server must offer REQUIRETLS. */
export function checkRequireTlsOffered(features: Map<string, string>, label: string): void {
  if (!features.has("REQUIRETLS")) {
    throw new SecurityFailure(
      "5.7.30",
      `REQUIRETLS support required, but host ${label} does not offer it`,
      { afterHandshake: true },
    );
  }
}
