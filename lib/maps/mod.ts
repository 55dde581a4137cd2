/**
 * Lookup tables: Postfix's `type:name` tables behind one interface, the
 * lists of them that parameters name, and Postfix's search orders.
 *
 * @example
 * ```ts
 * const maps = await Maps.open("virtual_alias_maps", "inline:{a@example.com=b@example.net}");
 * const hit = await addressFind(maps, "a@example.com"); // { value: "b@example.net", extension: "" }
 * ```
 *
 * @module
 */
export {
  braced,
  bracedItems,
  type Dict,
  type DictBackend,
  DictError,
  type DictErrorKind,
  type DictGrants,
  type DictOpenContext,
  type DictOpener,
  type DictOpenOptions,
  GRANT_KINDS,
  type GrantsContext,
  type MapSpec,
  NETWORK_TYPES,
  noGrants,
  parseMapSpec,
  splitMapList,
} from "./dict.ts";
export { type FindOptions, Maps } from "./maps.ts";
export { ProxyClient, type ProxyReply, type ProxyRequest } from "./proxy_client.ts";
export { openDict, supportedTypes, tableGrants } from "./registry.ts";
export {
  accessAddressFind,
  addressFind,
  type AddressMatch,
  type AddressSearchOptions,
  domainFind,
  type DomainSearchOptions,
} from "./search.ts";
