/**
 * SPF, the Sender Policy Framework of RFC 7208: may this client address
 * send mail for this domain?
 *
 * {@link checkHost} is the specification's check_host(): it fetches the
 * domain's SPF record through an injected resolver (lib/dns's FullResolver),
 * evaluates
 * its mechanisms (all, include, a, mx, ptr, ip4, ip6, exists) and modifiers
 * (redirect, exp) with the macro language of section 7, enforces the
 * processing limits of section 4.6.4, and returns one of the seven results
 * with the deciding term, the domain's explanation for a fail, and for an
 * error what went wrong. {@link receivedSpfHeader} writes the result as a
 * Received-SPF header value (section 9.1), safe to put in a message.
 *
 * A library, not a policy: it does not decide whether to reject, does not
 * cache between calls, and keeps no state; the caller chooses the identity
 * (MAIL FROM or HELO), the resolver and its time-outs, and what to do with
 * each result.
 *
 * Files: record.ts (record selection and syntax), macro.ts (the macro
 * language), ip.ts (client addresses), check.ts (the evaluation),
 * header.ts (Received-SPF).
 *
 * @example
 * ```ts
 * import { systemResolver } from "../dns/mod.ts";
 * import { checkHost, receivedSpfHeader } from "./mod.ts";
 *
 * const r = await checkHost("192.0.2.1", "example.com", "joe@example.com", {
 *   resolver: systemResolver({ timeoutMs: 5000 }),
 *   helo: "mail.example.com",
 * });
 * const header = `Received-SPF: ${receivedSpfHeader(r, {
 *   ip: "192.0.2.1", envelopeFrom: "joe@example.com", helo: "mail.example.com",
 *   receiver: "mx.example.org",
 * })}`;
 * ```
 *
 * @module
 */
export {
  checkHost,
  type CheckHostOptions,
  type SpfLimits,
  type SpfResult,
  type SpfResultCode,
} from "./check.ts";
export { type ReceivedSpfContext, receivedSpfHeader } from "./header.ts";
