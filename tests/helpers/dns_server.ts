/**
 * The tests' name server is the product's (lib/dns/server.ts, which
 * `postwarden test` runs for an admin's test zone).
 *
 * @module
 */
export * from "../../lib/dns/server.ts";
