/**
 * postscreen's settings, read once per process from main.cf (and the
 * service's -o overrides), as Postfix's postscreen(8) reads them. What
 * Postwarden's postscreen does not do stops the start in lib/config
 * (support.ts postscreenProblems), so nothing here is silently ignored.
 *
 * @module
 */
import type { Config } from "../../lib/config/mod.ts";
import { type NetworkList, parseNetworkList } from "../../lib/config/network_list.ts";
import {
  accessListItems,
  cacheMapPath,
  type DnsblSite,
  parseDnsblSites,
  type ScreenAction,
  screenAction,
  ScreenSettingsError,
} from "../../lib/config/postscreen.ts";

export { type DnsblSite, type ScreenAction, ScreenSettingsError };

/** Everything a postscreen connection needs to know. */
export interface ScreenSettings {
  greetAction: ScreenAction;
  greetWaitMs: number;
  greetTtlMs: number;
  /** The greeting's text (after "220 " / "220-"). */
  banner: string;
  dnsblSites: DnsblSite[];
  dnsblAction: ScreenAction;
  dnsblThreshold: number;
  /** postscreen_dnsbl_allowlist_threshold; null: off. */
  dnsblAllowlistThreshold: number | null;
  dnsblTimeoutMs: number;
  /** How long a DNSBL pass is remembered (postscreen_dnsbl_min_ttl: Deno gives no TTLs). */
  dnsblTtlMs: number;
  denylistAction: ScreenAction;
  /** postscreen_access_list: permit_mynetworks, and type:table items in order. */
  accessList: ({ kind: "mynetworks" } | { kind: "table"; spec: string })[];
  mynetworks: NetworkList;
  /** The KV file of the cache (postscreen_cache_map's path); null: no cache. */
  cachePath: string | null;
  cacheRetentionMs: number;
  commandTimeLimitMs: number;
  commandCountLimit: number;
  /** The smtpd "pass" service that gets the clients that pass (smtpd_service_name). */
  smtpdService: string;
  /** postscreen_pre_queue_limit: connections screened at once. */
  preQueueLimit: number;
  /** postscreen_client_connection_count_limit: connections per client at once (0: none). */
  clientConnectionLimit: number;
}

/** The settings of a configuration; throws {@link ScreenSettingsError}. */
export function screenSettings(c: Config): ScreenSettings {
  const accessList = accessListItems(c.list("postscreen_access_list"));
  const allow = c.str("postscreen_dnsbl_allowlist_threshold").trim();
  return {
    greetAction: screenAction("postscreen_greet_action", c.str("postscreen_greet_action")),
    greetWaitMs: c.time("postscreen_greet_wait") * 1000,
    greetTtlMs: c.time("postscreen_greet_ttl") * 1000,
    banner: c.str("postscreen_greet_banner"),
    dnsblSites: parseDnsblSites(c.list("postscreen_dnsbl_sites")),
    dnsblAction: screenAction("postscreen_dnsbl_action", c.str("postscreen_dnsbl_action")),
    dnsblThreshold: c.int("postscreen_dnsbl_threshold"),
    dnsblAllowlistThreshold: allow === "" ? null : Number.parseInt(allow, 10),
    dnsblTimeoutMs: c.time("postscreen_dnsbl_timeout") * 1000,
    dnsblTtlMs: c.time("postscreen_dnsbl_min_ttl") * 1000,
    denylistAction: screenAction(
      "postscreen_denylist_action",
      c.str("postscreen_denylist_action"),
    ),
    accessList,
    mynetworks: parseNetworkList("mynetworks", c.list("mynetworks")),
    cachePath: cacheMapPath(c.str("postscreen_cache_map")),
    cacheRetentionMs: c.time("postscreen_cache_retention_time") * 1000,
    commandTimeLimitMs: c.time("postscreen_command_time_limit") * 1000,
    commandCountLimit: c.int("postscreen_command_count_limit"),
    smtpdService: c.str("smtpd_service_name").trim() || "smtpd",
    preQueueLimit: c.int("postscreen_pre_queue_limit"),
    clientConnectionLimit: c.int("postscreen_client_connection_count_limit"),
  };
}
