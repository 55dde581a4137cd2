/**
 * transport_maps lookups as Postfix's transport.c and transport(5):
 *
 * 1. the full recipient `user+ext@domain` (pattern tables too);
 * 2. the recipient without its extension `user@domain`;
 * 3. the domain, then its parents `.parent` (or `parent` when
 *    parent_domain_matches_subdomains names transport_maps);
 * 4. the wildcard `*` (pattern tables too).
 *
 * A value is `transport:nexthop`. An empty transport keeps the class's
 * transport (`:[host]` changes only the next hop, `:` changes nothing); a
 * transport without a next hop gets the recipient domain, or "Address is
 * undeliverable" for the error transport.
 *
 * @module
 */
import { splitAddress, splitExtension } from "../address/mod.ts";
import type { Maps } from "../maps/mod.ts";

/** Options for {@link transportLookup}. */
export interface TransportLookupOptions {
  /** recipient_delimiter. @default "" */
  delimiters?: string;
  /** double_bounce_sender, never split. @default "double-bounce" */
  doubleBounceSender?: string;
  /** parent_domain_matches_subdomains lists transport_maps. @default false */
  parentMatches?: boolean;
}

/** What a transport table entry changes; "" transport means "keep". */
export interface TransportEntry {
  transport: string;
  nexthop: string;
}

/**
 * The entry for a resolved recipient, or undefined. The result is already
 * merged with `current` (the class's transport and next hop); `key` and
 * `value` are the table entry that matched.
 *
 * @throws {DictError} when a table cannot answer.
 */
export async function transportLookup(
  maps: Maps,
  recipient: string,
  rcptDomain: string,
  opts: TransportLookupOptions & { current?: TransportEntry } = {},
): Promise<(TransportEntry & { key: string; value: string }) | undefined> {
  const apply = (key: string, value: string) => ({
    ...applyEntry(value, rcptDomain, opts.current),
    key,
    value,
  });
  let v = await maps.find(recipient);
  if (v !== undefined) return apply(recipient, v);
  const { local, domain } = splitAddress(recipient);
  const { user, extension } = splitExtension(local, opts.delimiters ?? "", {
    doubleBounceSender: opts.doubleBounceSender,
  });
  if (extension !== "") {
    v = await maps.find(`${user}@${domain}`, { partial: true });
    if (v !== undefined) return apply(`${user}@${domain}`, v);
  }
  let name = domain;
  while (name !== "") {
    v = await maps.find(name, { partial: true });
    if (v !== undefined) return apply(name, v);
    const dot = name.indexOf(".", 1);
    if (dot < 0) break;
    name = opts.parentMatches ? name.slice(dot + 1) : name.slice(dot);
  }
  v = await maps.find("*");
  return v === undefined ? undefined : apply("*", v);
}

/** Postfix's update_entry: merges a `transport:nexthop` value into the current choice. */
export function applyEntry(
  value: string,
  rcptDomain: string,
  current: TransportEntry = { transport: "", nexthop: "" },
): TransportEntry {
  const colon = value.indexOf(":");
  const transport = colon < 0 ? value : value.slice(0, colon);
  const nexthop = colon < 0 ? "" : value.slice(colon + 1);
  if (transport === "") {
    return { transport: current.transport, nexthop: nexthop !== "" ? nexthop : current.nexthop };
  }
  return {
    transport,
    nexthop: nexthop !== ""
      ? nexthop
      : transport !== "error"
      ? rcptDomain
      : "Address is undeliverable",
  };
}
