/**
 * Postfix's search orders: which keys are tried, in which order, when a
 * table is asked about an address or a domain. Each use in Postfix has its
 * own order; the three here are the shared ones.
 *
 * - {@link addressFind}: canonical, virtual and the other address tables
 *   (mail_addr_find): `user+ext@domain`, `user@domain`, then, when the
 *   domain is $myorigin or local, `user+ext` and `user`, then `@domain`.
 * - {@link domainFind}: a domain and its parents (check_domain_access,
 *   relay_domains and friends as tables): `sub.example.com`, then
 *   `.example.com`, `.com`, or `example.com`, `com` when the use is listed
 *   in parent_domain_matches_subdomains.
 * - {@link accessAddressFind}: an address in an access table
 *   (check_mail_access): the address, without extension, its domain and
 *   parents, `user+ext@`, `user@`.
 *
 * Only the first key goes to pattern tables (regexp, pcre, cidr); partial
 * keys go to fixed-string tables only.
 *
 * @module
 */
import { splitAddress, splitExtension } from "../address/mod.ts";
import type { Maps } from "./maps.ts";

/** What an address search needs from the configuration. */
export interface AddressSearchOptions {
  /** recipient_delimiter ("" for none). @default "" */
  delimiters?: string;
  /** double_bounce_sender (never split). @default "double-bounce" */
  doubleBounceSender?: string;
  /**
   * True when a domain is $myorigin, in $mydestination, $inet_interfaces or
   * $proxy_interfaces: then the bare local part is tried too.
   * @default () => false
   */
  isLocal?: (domain: string) => boolean;
}

/** A found value and the extension the key matched without (or ""). */
export interface AddressMatch {
  value: string;
  /** The address extension with its delimiter (e.g. "+foo") when the match was for the address without it. */
  extension: string;
}

/**
 * Postfix's mail_addr_find: looks an internal-form address up in maps.
 *
 * @throws {DictError} when a table cannot answer.
 */
export async function addressFind(
  maps: Maps,
  address: string,
  opts: AddressSearchOptions = {},
): Promise<AddressMatch | undefined> {
  const { local, domain } = splitAddress(address);
  const hasAt = address.lastIndexOf("@") >= 0;
  const { user, extension } = splitExtension(local, opts.delimiters ?? "", {
    doubleBounceSender: opts.doubleBounceSender,
  });
  const found = (value: string | undefined, ext: string) =>
    value === undefined ? undefined : { value, extension: ext };

  let hit = found(await maps.find(address), "");
  if (hit) return hit;
  if (extension !== "") {
    hit = found(await maps.find(hasAt ? `${user}@${domain}` : user, { partial: true }), extension);
    if (hit) return hit;
  }
  if (!hasAt) return undefined;
  if ((opts.isLocal ?? (() => false))(domain)) {
    hit = found(await maps.find(local, { partial: true }), "");
    if (hit) return hit;
    if (extension !== "") {
      hit = found(await maps.find(user, { partial: true }), extension);
      if (hit) return hit;
    }
  }
  return found(await maps.find(`@${domain}`, { partial: true }), "");
}

/** Options for {@link domainFind}. */
export interface DomainSearchOptions {
  /**
   * The use is listed in parent_domain_matches_subdomains: parents are
   * tried as `example.com` rather than `.example.com`. @default false
   */
  parentMatches?: boolean;
  /** The first key is partial too (pattern tables are not asked). @default false */
  partial?: boolean;
}

/**
 * A domain and then its parent domains, as Postfix's check_domain_access.
 * Returns the value and the key that matched.
 *
 * @throws {DictError} when a table cannot answer.
 */
export async function domainFind(
  maps: Maps,
  domain: string,
  opts: DomainSearchOptions = {},
): Promise<{ value: string; key: string } | undefined> {
  let key = domain;
  let partial = opts.partial ?? false;
  for (;;) {
    const value = await maps.find(key, { partial });
    if (value !== undefined) return { value, key };
    const dot = key.indexOf(".", 1);
    if (dot < 0) return undefined;
    key = opts.parentMatches ? key.slice(dot + 1) : key.slice(dot);
    if (key === "" || key === ".") return undefined;
    partial = true;
  }
}

/**
 * An address in an access table, as Postfix's check_mail_access:
 * `user+ext@domain`, `user@domain`, the domain and its parents (see
 * {@link domainFind}), `user+ext@`, `user@`. Returns the value and the key
 * that matched.
 *
 * @throws {DictError} when a table cannot answer.
 */
export async function accessAddressFind(
  maps: Maps,
  address: string,
  opts: AddressSearchOptions & { parentMatches?: boolean } = {},
): Promise<{ value: string; key: string } | undefined> {
  const { local, domain } = splitAddress(address);
  const { user, extension } = splitExtension(local, opts.delimiters ?? "", {
    doubleBounceSender: opts.doubleBounceSender,
  });
  const tryKey = async (key: string, partial: boolean) => {
    const value = await maps.find(key, { partial });
    return value === undefined ? undefined : { value, key };
  };
  let hit = await tryKey(address, false);
  if (hit) return hit;
  if (extension !== "") {
    hit = await tryKey(domain !== "" ? `${user}@${domain}` : user, true);
    if (hit) return hit;
  }
  if (domain !== "") {
    hit = await domainFind(maps, domain, { parentMatches: opts.parentMatches, partial: true });
    if (hit) return hit;
  }
  hit = await tryKey(`${local}@`, true);
  if (hit) return hit;
  if (extension !== "") return await tryKey(`${user}@`, true);
  return undefined;
}
