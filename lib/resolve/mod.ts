/**
 * Address resolution, the role of Postfix's trivial-rewrite: where a
 * recipient goes (transport, next hop, recipient), its address class and
 * routing flags. qmgr resolves every recipient with it; smtpd's relay
 * control (permit_auth_destination, reject_unauth_destination) reads the
 * class and flags; cleanup canonicalizes addresses with
 * {@link rewriteAddress} in the context {@link rewriteContext} builds.
 *
 * @example
 * ```ts
 * const resolver = Resolver.fromConfig(config);
 * const r = await resolver.resolve("user%remote.example@localhost", { sender: "a@b" });
 * // { transport: "smtp", nexthop: "remote.example", recipient: "user@remote.example", ... }
 * ```
 *
 * @module
 */
export { rewriteAddress, type RewriteContext } from "../address/rewrite.ts";
export { interfaceAddresses, literalMatches, systemInterfaces } from "./interfaces.ts";
export { MatchList } from "./match_list.ts";
export {
  type AddressClass,
  deliveryRoute,
  type Resolution,
  RESOLVE_CLASS_ALIAS,
  RESOLVE_CLASS_DEFAULT,
  RESOLVE_CLASS_FINAL,
  RESOLVE_CLASS_LOCAL,
  RESOLVE_CLASS_RELAY,
  RESOLVE_CLASS_VIRTUAL,
  RESOLVE_FLAG_ERROR,
  RESOLVE_FLAG_FINAL,
  RESOLVE_FLAG_ROUTED,
  ResolveError,
  type ResolveOptions,
  Resolver,
  type ResolverOptions,
  type ResolverParams,
  resolverParams,
  rewriteContext,
  validHostname,
} from "./resolve.ts";
export { applyEntry, type TransportEntry, transportLookup } from "./transport.ts";
