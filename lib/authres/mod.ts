/**
 * The Authentication-Results header field of RFC 8601: how a receiver
 * tells the mail's readers and filters what SPF, DKIM, DMARC and SMTP AUTH
 * found.
 *
 * {@link authenticationResults} writes the field's value from a list of
 * results, quoting and cleaning every value so that nothing from the
 * message or the DNS can end the field or forge a clause, and folding it
 * one result per line. {@link authservIdOf} reads the authserv-id of an
 * existing field, so that fields claiming to come from this host can be
 * deleted before it adds its own (section 5).
 *
 * Not here: parsing a whole field (its results, properties and comments),
 * comments in the fields written, the registry of methods and result
 * codes (any keyword is accepted), deciding which fields to trust or
 * delete, and the header name and field folding at the message's line
 * length (the value is folded; the caller writes "Authentication-Results: ").
 *
 * Files: format.ts (writing), parse.ts (the authserv-id).
 *
 * @example
 * ```ts
 * import { authenticationResults, authservIdOf } from "./mod.ts";
 *
 * const me = "mx.example.org";
 * // Before adding ours, delete the fields for which this is true (RFC 8601 section 5).
 * const forged = (value: string) => authservIdOf(value)?.toLowerCase() === me;
 * const header = "Authentication-Results: " + authenticationResults(me, [
 *   { method: "spf", result: "pass", props: [["smtp.mailfrom", "joe@example.com"]] },
 *   { method: "dkim", result: "pass", props: [["header.d", "example.com"], ["header.b", "abcd1234"]] },
 *   { method: "dmarc", result: "pass", props: [["header.from", "example.com"], ["policy.dmarc", "reject"]] },
 * ]);
 * // Authentication-Results: mx.example.org;
 * //	spf=pass smtp.mailfrom=joe@example.com;
 * //	dkim=pass header.d=example.com header.b=abcd1234;
 * //	dmarc=pass header.from=example.com policy.dmarc=reject
 * ```
 *
 * @module
 */
export { authenticationResults, type AuthResult } from "./format.ts";
export { authservIdOf } from "./parse.ts";
