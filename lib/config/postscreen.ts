/**
 * postscreen's settings that more than the daemon reads: where it keeps
 * its cache (daemons/postscreen/cache.ts; its sandbox, lib/permissions,
 * and the start, lib/instance, which makes the folder), and the syntax of
 * its actions and DNS lists (support.ts stops a start with a bad one).
 *
 * @module
 */
import { type OctetMatch, parseDnsxlFilter } from "./restrictions.ts";

/** What a failed test does (postscreen_*_action). */
export type ScreenAction = "ignore" | "enforce" | "drop";

/** One postscreen_dnsbl_sites item: `domain[=filter][*weight]`. */
export interface DnsblSite {
  /** As written, for logs and replies ("zen.example=127.0.0.[2..11]*3"). */
  text: string;
  domain: string;
  /** The reply filter; null: any A record counts. */
  filter: OctetMatch[] | null;
  weight: number;
}

/** A bad postscreen setting (the start reports it first: lib/config support.ts). */
export class ScreenSettingsError extends Error {
  override readonly name = "ScreenSettingsError";
}

/** An action parameter's value. */
export function screenAction(name: string, value: string): ScreenAction {
  const v = value.trim().toLowerCase();
  if (v === "ignore" || v === "enforce" || v === "drop") return v;
  throw new ScreenSettingsError(
    `${name}: bad action "${value.trim()}" (specify ignore, enforce or drop)`,
  );
}

/** postscreen_dnsbl_sites: each `domain[=filter][*weight]`. */
export function parseDnsblSites(items: string[]): DnsblSite[] {
  return items.map((text) => {
    const m = /^([^=*]+)(?:=([^*]+))?(?:\*(-?\d+))?$/.exec(text);
    if (!m) throw new ScreenSettingsError(`postscreen_dnsbl_sites: bad item "${text}"`);
    const filter = m[2] === undefined ? null : parseDnsxlFilter(m[2]);
    if (m[2] !== undefined && filter === null) {
      throw new ScreenSettingsError(`postscreen_dnsbl_sites: bad reply filter in "${text}"`);
    }
    const domain = m[1].toLowerCase().replace(/\.$/, "");
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)+$/.test(domain)) {
      throw new ScreenSettingsError(`postscreen_dnsbl_sites: bad domain in "${text}"`);
    }
    return { text, domain, filter, weight: m[3] === undefined ? 1 : Number(m[3]) };
  });
}

/**
 * postscreen_cache_map as a KV file path: Postfix's `btree:`, `lmdb:` or
 * `hash:` file (`btree:$data_directory/postscreen_cache` by default) is
 * kept as a Deno KV database at that path plus ".kv"; empty: no cache.
 * Throws for anything else (a shared proxy: cache, another type).
 */
export function cacheMapPath(value: string): string | null {
  const v = value.trim();
  if (v === "") return null;
  const m = /^(btree|lmdb|hash):(\/[^\s,]+)$/.exec(v);
  if (!m || m[2].split("/").includes("..")) {
    throw new ScreenSettingsError(
      `postscreen_cache_map = ${v}: only a local btree:, lmdb: or hash: file is supported ` +
        "(kept as a Deno KV database beside it)",
    );
  }
  return `${m[2]}.kv`;
}

/** The files SQLite (under Deno KV) keeps for a database. */
export function kvFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`, `${path}-journal`];
}

/** postscreen_access_list's items: permit_mynetworks and type:table. */
export function accessListItems(
  items: string[],
): ({ kind: "mynetworks" } | { kind: "table"; spec: string })[] {
  return items.map((item) => {
    if (item.toLowerCase() === "permit_mynetworks") return { kind: "mynetworks" as const };
    if (/^[a-z]+:/.test(item)) return { kind: "table" as const, spec: item };
    throw new ScreenSettingsError(
      `postscreen_access_list: "${item}": specify permit_mynetworks or type:table`,
    );
  });
}
