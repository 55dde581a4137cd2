/**
 * What Postwarden cannot honour in a configuration, found before any
 * daemon runs: the report behind `Config.warnings` (non-fatal) and
 * `validateConfig` (fatal). Postwarden fails closed: a setting it does not
 * implement is an error when ignoring it could let mail through that the
 * admin meant to stop or send mail where the admin did not mean it to go,
 * and a warning otherwise. Nothing that is set is silently ignored.
 *
 * - Parameters of the table marked `ignored`/`refused` (params.ts), when
 *   their effective value (set, or the default) is not what Postwarden
 *   does anyway: e.g. Postfix's default local_recipient_maps.
 * - Postfix parameters outside the table, when set to something other than
 *   Postfix's default (postfix_names.ts): a warning if they are on the
 *   reviewed allow-list of harmless ones (ignorable.ts), an error otherwise.
 * - Bad values (smtpd_forbid_bare_newline) and values implemented only in
 *   part: smtpd's TLS protocols, cipher grades and exclusions
 *   (lib/tls/policy.ts), the SMTP client's TLS levels and SASL options
 *   (lib/tls/client_policy.ts, lib/sasl/client.ts), network lists (mynetworks) with lookup tables or files, domain lists
 *   (mydestination, relay_domains, virtual_*_domains) read from files,
 *   restriction names smtpd
 *   does not know (a warning: smtpd answers 451 4.3.5, as Postfix), a relay
 *   configuration that cannot refuse relaying (Postfix will not run it),
 *   and mynetworks left to its default.
 *
 * Pure: reads the Config only.
 *
 * @module
 */

import { accessListItems, cacheMapPath, parseDnsblSites, screenAction } from "./postscreen.ts";
import type { Config } from "./config.ts";
import { ConfigError } from "./errors.ts";
import { expand, type Lookup } from "./expand.ts";
import { classify, isPerTransport } from "./ignorable.ts";
import { parseNetworkList } from "./network_list.ts";
import { PARAMS, type ParamSpec } from "./params.ts";
import { DictError, parseMapSpec, splitMapList, supportedTypes } from "../maps/mod.ts";
import { POSTFIX_DEFAULTS } from "./postfix_names.ts";
import { smtpdTlsPolicy } from "../tls/policy.ts";
import { ccertRefusal } from "../tls/ccert.ts";
import { parseCapture } from "../deliver/capture.ts";
import { parseNameServers } from "../dns/confirm.ts";
import {
  canRefuseRelay,
  DNSXL_RESTRICTIONS,
  dnsxlArgumentProblem,
  OPEN_RELAY_MESSAGE,
  RESTRICTION_LISTS,
  restrictionItems,
  unsupportedRestrictions,
} from "./restrictions.ts";
import { policyServicesOf } from "./policy_service.ts";
import { saslProblems } from "./sasl.ts";
import { parseMilterList, resolveMilterSettings } from "../milter/config.ts";
import { smtpTlsProblems } from "../tls/client_policy.ts";
import { saslClientProblems } from "../sasl/client.ts";

/** One finding: the parameters it is about, its message, and whether it stops the start. */
export interface ConfigProblem {
  names: string[];
  message: string;
  fatal: boolean;
}

/** Values compared as Postfix would read them: lists by their items, the rest trimmed. */
function normalize(value: string): string {
  return value.split(/[\s,]+/).filter((w) => w !== "").join(" ");
}

/** `name = value` as set, or `name = expanded value (the default)` when not set. */
function shown(config: Config, name: string): string {
  if (config.isSet(name)) return `${name} = ${normalize(config.raw(name) ?? "")}`;
  const value = quietly(() => config.str(name)) ?? config.raw(name) ?? "";
  return `${name} = ${normalize(value)} (the default)`;
}

/** Calls f, turning a ConfigError into undefined (the type checks report it). */
function quietly<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError) return undefined;
    throw e;
  }
}

/** Calls f, turning a DictError (a malformed table name) into undefined. */
function quietlyDict<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof DictError) return undefined;
    throw e;
  }
}

/** Unimplemented parameters of the table whose effective value is not what Postwarden does. */
function tableParams(config: Config, lookup: Lookup): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const spec of PARAMS.values()) {
    if (spec.support === "implemented") continue;
    const value = quietly(() => config.str(spec.name));
    if (value === undefined) continue;
    const target = spec.behavesAs ??
      quietly(() => expand(spec.default, lookup, { stack: [spec.name] }));
    const same = (a: string) => normalize(value).toLowerCase() === normalize(a).toLowerCase();
    if (target === undefined || same(target) || (spec.alsoFine ?? []).some(same)) continue;
    out.push(unimplemented(config, spec));
  }
  return out;
}

function unimplemented(config: Config, spec: ParamSpec): ConfigProblem {
  const what = shown(config, spec.name);
  const advice = spec.note ??
    (spec.behavesAs === undefined
      ? "remove the setting"
      : `set "${spec.name} = ${spec.behavesAs}"`);
  const fatal = spec.support === "refused";
  const how = fatal ? "not implemented by Postwarden" : "not implemented by Postwarden and ignored";
  return { names: [spec.name], message: `${what}: ${how}; ${advice}`, fatal };
}

/** Postfix parameters outside the table that are set to something other than Postfix's default. */
function postfixParams(config: Config, lookup: Lookup): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const [name, raw] of config.explicit()) {
    if (PARAMS.has(name)) continue;
    const postfixDefault = POSTFIX_DEFAULTS.get(name);
    if (postfixDefault === undefined && !isPerTransport(name)) continue; // not Postfix's: "unused"
    const value = quietly(() => expand(raw, lookup, { stack: [name] })) ?? raw;
    if (postfixDefault !== undefined) {
      const def = quietly(() => expand(postfixDefault, lookup, { stack: [name] })) ??
        postfixDefault;
      if (normalize(raw) === normalize(postfixDefault) || normalize(value) === normalize(def)) {
        continue;
      }
    }
    const c = classify(name);
    if (c.support === "implemented") continue;
    const what = `${name} = ${normalize(raw)}`;
    if (c.support === "ignored" && (!c.accepts || c.accepts(normalize(value)))) {
      out.push({
        names: [name],
        message: `parameter ${name} is not supported by Postwarden and is ignored: ${c.why}`,
        fatal: false,
      });
      continue;
    }
    const message = c.support === "ignored"
      ? `${what}: not supported by Postwarden; only ${c.acceptsText} is safe to ignore (${c.why}); ` +
        `set it to ${c.acceptsText} or remove it`
      : `${what}: not supported by Postwarden, and ignoring it could accept or deliver mail ` +
        `against this setting${c.why ? ` (${c.why})` : ""}; remove the setting`;
    out.push({ names: [name], message, fatal: true });
  }
  return out;
}

/** The domain lists of the resolver (lib/resolve/match_list.ts). */
const DOMAIN_LISTS = [
  "mydestination",
  "relay_domains",
  "virtual_alias_domains",
  "virtual_mailbox_domains",
];

/** The resolver's lookup tables (lib/resolve). */
const RESOLVER_MAPS = [
  "transport_maps",
  "sender_dependent_relayhost_maps",
  "sender_dependent_default_transport_maps",
  "relocated_maps",
];

/** Partly implemented values and cross-parameter checks. */
function valueChecks(config: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const fatal = (names: string[], message: string) => out.push({ names, message, fatal: true });
  const warn = (names: string[], message: string) => out.push({ names, message, fatal: false });

  const bareNewline = quietly(() => config.str("smtpd_forbid_bare_newline").trim().toLowerCase());
  if (bareNewline !== undefined && !["normalize", "yes", "reject", "no"].includes(bareNewline)) {
    fatal(
      ["smtpd_forbid_bare_newline"],
      `bad smtpd_forbid_bare_newline value: ${bareNewline} (specify normalize, yes, reject or no)`,
    );
  }

  const hosting = quietly(() => config.str("postwarden_daemon_hosting").trim());
  if (hosting !== undefined && hosting !== "process" && hosting !== "worker") {
    fatal(
      ["postwarden_daemon_hosting"],
      `bad postwarden_daemon_hosting value: ${hosting} (specify process or worker)`,
    );
  }

  const excl = quietly(() => config.list("smtpd_forbid_bare_newline_exclusions"));
  if (excl && config.isSet("smtpd_forbid_bare_newline_exclusions")) {
    const parsed = parseNetworkList("smtpd_forbid_bare_newline_exclusions", excl);
    for (const e of parsed.errors) fatal(["smtpd_forbid_bare_newline_exclusions"], e);
  }

  // smtpd's TLS settings (lib/tls/policy.ts): what its TLS library cannot honour.
  const tls = quietly(() => smtpdTlsPolicy(config));
  if (tls) out.push(...tls.problems);

  const nets = quietly(() => config.list("mynetworks"));
  if (nets) {
    const parsed = parseNetworkList("mynetworks", nets);
    for (const e of parsed.errors) fatal(["mynetworks"], e);
    // Host names in mynetworks always match their subdomains here; without
    // "mynetworks" in parent_domain_matches_subdomains Postfix would trust
    // fewer clients than Postwarden would.
    const parents = quietly(() => config.list("parent_domain_matches_subdomains")) ?? [];
    const names = parsed.items.filter((i) => i.kind === "name" && !i.negate);
    if (names.length > 0 && !parents.map((p) => p.toLowerCase()).includes("mynetworks")) {
      fatal(
        ["mynetworks", "parent_domain_matches_subdomains"],
        "mynetworks: host names match their subdomains in Postwarden; with mynetworks left out " +
          "of parent_domain_matches_subdomains, use addresses in mynetworks instead",
      );
    }
  }
  // XCLIENT/XFORWARD authorization: an item Postwarden cannot match would
  // be a lookup error at every command in Postfix; here it stops the start.
  for (const name of ["smtpd_authorized_xclient_hosts", "smtpd_authorized_xforward_hosts"]) {
    const items = quietly(() => config.list(name)) ?? [];
    for (const e of parseNetworkList(name, items).errors) fatal([name], e);
  }
  const upstream = quietly(() => config.str("smtpd_upstream_proxy_protocol").trim());
  if (upstream !== undefined && upstream !== "" && upstream !== "haproxy") {
    fatal(
      ["smtpd_upstream_proxy_protocol"],
      `unsupported smtpd_upstream_proxy_protocol value: ${upstream} (specify haproxy or nothing)`,
    );
  }
  if (!config.isSet("mynetworks")) {
    warn(
      ["mynetworks"],
      `mynetworks is not set: Postwarden trusts only the loopback network (${
        config.raw("mynetworks")
      }), not the networks of this host's other interfaces as Postfix does; set mynetworks ` +
        "to say which clients may relay",
    );
  }

  // Domain lists (and smtpd_forbidden_commands, a string list) are matched by
  // lib/resolve (string and domain lists with tables); a list read from a
  // file is not. A table of a type Postwarden
  // does not have stops the start rather than every delivery.
  const mapParams = [...RESOLVER_MAPS, "smtpd_discard_ehlo_keyword_address_maps"];
  for (const name of [...DOMAIN_LISTS, ...mapParams, "smtpd_forbidden_commands"]) {
    // By default these name the alias and mailbox tables, reported under their own names.
    if (name.startsWith("virtual_") && !config.isSet(name)) continue;
    const items = quietlyDict(() => splitMapList(quietly(() => config.str(name)) ?? ""));
    if (items === undefined) {
      fatal([name], `${name}: unbalanced "{" or "}"`);
      continue;
    }
    for (const item of items) {
      const bare = item.replace(/^!+/, "");
      if (mapParams.includes(name) && !bare.includes(":")) {
        fatal([name], `${name}: "${item}": need "type:name"`);
      } else if (bare.startsWith("/")) {
        fatal(
          [name],
          `${name}: "${item}": lists read from a file are not supported by Postwarden; list ` +
            "the domains in main.cf or use a lookup table",
        );
      } else if (bare.includes(":") && !bare.startsWith("[")) {
        const type = quietlyDict(() => parseMapSpec(bare).type);
        if (type === undefined) {
          fatal([name], `${name}: "${item}": need "type:name"`);
        } else if (!supportedTypes().includes(type)) {
          fatal(
            [name],
            `${name}: table ${bare}: lookup table type "${type}" is not supported by ` +
              `Postwarden (supported: ${supportedTypes().join(", ")})`,
          );
        }
      }
    }
  }

  const classes = quietly(() => config.list("smtpd_restriction_classes")) ?? [];
  for (const list of [...RESTRICTION_LISTS, ...classes]) {
    const names = quietly(() =>
      unsupportedRestrictions([restrictionItems(config.str(list))], classes)
    ) ?? [];
    for (const r of names) {
      const ccert = ccertRefusal(list, r);
      if (ccert) {
        fatal([list], ccert);
        continue;
      }
      warn(
        [list],
        `${list}: restriction "${r}" is not supported by Postwarden; mail that reaches it is ` +
          "answered 451 4.3.5 Server configuration error",
      );
    }
    const policy = quietly(() =>
      policyServicesOf([restrictionItems(config.str(list))], config.str("queue_directory"))
    );
    for (const e of policy?.errors ?? []) {
      warn([list], `${list}: ${e}; mail that reaches it is answered 451 4.3.5`);
    }
    // A DNS list argument smtpd cannot use as meant stops the start (fail closed).
    const items = quietly(() => restrictionItems(config.str(list))) ?? [];
    for (let i = 0; i < items.length - 1; i++) {
      if (!DNSXL_RESTRICTIONS.has(items[i].toLowerCase())) continue;
      const problem = dnsxlArgumentProblem(items[++i]);
      if (problem) fatal([list], `${list}: ${items[i - 1]}: ${problem}`);
    }
  }
  // Postfix's smtpd dies on any other value; so does Postwarden's, so stop before the start.
  for (const name of ["unknown_helo_hostname_tempfail_action", "unknown_address_tempfail_action"]) {
    const v = quietly(() => config.str(name).trim());
    if (v !== undefined && !/^(defer|defer_if_permit)$/i.test(v)) {
      fatal([name], `bad configuration: ${name} = ${v} (use defer or defer_if_permit)`);
    }
  }
  for (const p of saslProblems(config)) fatal(p.names, p.message);
  // A milter list, setting or default action smtpd or cleanup cannot use stops the start.
  for (const name of ["smtpd_milters", "non_smtpd_milters"]) {
    const list = quietly(() => config.str(name));
    if (list === undefined) continue;
    try {
      for (const e of parseMilterList(list)) {
        resolveMilterSettings(e, (n) => quietly(() => config.str(n)));
      }
    } catch (e) {
      fatal([name], `${name}: ${(e as Error).message}`);
    }
  }
  out.push(...authenticationProblems(config, classes));
  out.push(...mtaStsProblems(config));
  out.push(...dnsServerProblems(config));
  out.push(...captureProblems(config));
  // postscreen's actions, lists and cache (daemons/postscreen/settings.ts reads them so).
  const ps: [string, (v: string) => unknown][] = [
    ["postscreen_greet_action", (v) => screenAction("postscreen_greet_action", v)],
    ["postscreen_dnsbl_action", (v) => screenAction("postscreen_dnsbl_action", v)],
    ["postscreen_denylist_action", (v) => screenAction("postscreen_denylist_action", v)],
    ["postscreen_dnsbl_sites", (v) => parseDnsblSites(v.split(/[\s,]+/).filter(Boolean))],
    ["postscreen_access_list", (v) => accessListItems(v.split(/[\s,]+/).filter(Boolean))],
    ["postscreen_cache_map", (v) => cacheMapPath(v)],
  ];
  for (const [name, check] of ps) {
    const v = quietly(() => config.str(name));
    if (v === undefined) continue;
    try {
      check(v);
    } catch (e) {
      fatal([name], (e as Error).message);
    }
  }
  // The SMTP client's TLS and SASL settings (lib/tls/client_policy.ts, lib/sasl/client.ts).
  out.push(...(quietly(() => smtpTlsProblems(config)) ?? []));
  out.push(...(quietly(() => saslClientProblems(config)) ?? []));

  const relay = quietly(() => config.list("smtpd_relay_restrictions"));
  const rcpt = quietly(() => config.list("smtpd_recipient_restrictions"));
  if (relay && rcpt && !canRefuseRelay(relay, rcpt)) {
    fatal(["smtpd_relay_restrictions", "smtpd_recipient_restrictions"], OPEN_RELAY_MESSAGE);
  }

  return out;
}

/** The methods postwarden_authentication_checks may name. */
export const AUTHENTICATION_METHODS = ["spf", "dkim", "dmarc", "arc"] as const;

/**
 * MTA-STS in the SMTP client (daemons/smtp/mta_sts.ts, daemons/mtasts):
 * the cache and the trust anchors must be absolute paths; without anchors
 * no MX certificate could be verified, so every enforced domain's mail
 * would wait.
 */
function mtaStsProblems(config: Config): ConfigProblem[] {
  if (!(quietly(() => config.bool("postwarden_mta_sts")) ?? false)) return [];
  const out: ConfigProblem[] = [];
  for (const name of ["postwarden_mta_sts_cache", "postwarden_mta_sts_CAfile"]) {
    const v = quietly(() => config.str(name).trim()) ?? "";
    if (!v.startsWith("/") || v.split("/").includes("..")) {
      out.push({
        names: [name, "postwarden_mta_sts"],
        message: `${name}: "${v}" is not an absolute path`,
        fatal: true,
      });
    }
  }
  return out;
}

/**
 * postwarden_capture: a malformed address stops the start (the agents
 * would otherwise deliver for real); a set one is said at every start, as
 * no mail is then delivered.
 */
function captureProblems(config: Config): ConfigProblem[] {
  const v = quietly(() => config.str("postwarden_capture")) ?? "";
  try {
    if (parseCapture(v) === null) return [];
    return [{
      names: ["postwarden_capture"],
      message: `postwarden_capture = ${v.trim()}: nothing is delivered, every message goes ` +
        "to that sink (the postwarden test instance's setting)",
      fatal: false,
    }];
  } catch (e) {
    return [{
      names: ["postwarden_capture"],
      message: `postwarden_capture: ${(e as Error).message}`,
      fatal: true,
    }];
  }
}

/** postwarden_dns_servers must be addresses (lib/dns parseNameServers): a typo would leave the daemons asking nobody. */
function dnsServerProblems(config: Config): ConfigProblem[] {
  const v = quietly(() => config.str("postwarden_dns_servers")) ?? "";
  try {
    parseNameServers(v);
    return [];
  } catch (e) {
    return [{
      names: ["postwarden_dns_servers"],
      message: `postwarden_dns_servers: ${(e as Error).message}`,
      fatal: true,
    }];
  }
}

/**
 * Postwarden's own mail authentication (daemons/smtpd/authentication.ts,
 * DKIM signing in cleanup): a method it does not have, a DMARC
 * restriction where no message content is known yet, or DKIM keys it
 * could not reach would each let mail through unchecked or unsigned, so
 * each stops the start.
 */
function authenticationProblems(config: Config, classes: string[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const fatal = (names: string[], message: string) => out.push({ names, message, fatal: true });
  const methods = quietly(() => config.list("postwarden_authentication_checks")) ?? [];
  for (const m of methods) {
    if ((AUTHENTICATION_METHODS as readonly string[]).includes(m.toLowerCase())) continue;
    fatal(
      ["postwarden_authentication_checks"],
      `postwarden_authentication_checks: "${m}" is not supported by Postwarden (specify ` +
        `${AUTHENTICATION_METHODS.join(", ")})`,
    );
  }
  // postwarden_reject_dmarc_fail needs the message: only at the end of data.
  for (const list of [...RESTRICTION_LISTS, ...classes]) {
    if (list === "smtpd_end_of_data_restrictions" || classes.includes(list)) continue;
    const items = quietly(() => restrictionItems(config.str(list))) ?? [];
    if (items.some((r) => r.toLowerCase() === "postwarden_reject_dmarc_fail")) {
      fatal(
        [list],
        `${list}: postwarden_reject_dmarc_fail needs the message content: list it in ` +
          "smtpd_end_of_data_restrictions",
      );
    }
  }
  const signing = quietly(() => config.str("postwarden_dkim_signing_table").trim()) ?? "";
  if (signing !== "") {
    const dir = quietly(() => config.str("postwarden_dkim_key_directory").trim()) ?? "";
    if (!dir.startsWith("/")) {
      fatal(
        ["postwarden_dkim_key_directory"],
        `postwarden_dkim_key_directory: "${dir}" is not an absolute path`,
      );
    }
  }
  const sealDomain = quietly(() => config.str("postwarden_arc_seal_domain").trim()) ?? "";
  if (sealDomain !== "") {
    if (!methods.some((m) => m.toLowerCase() === "arc")) {
      fatal(
        ["postwarden_arc_seal_domain", "postwarden_authentication_checks"],
        "postwarden_arc_seal_domain needs arc in postwarden_authentication_checks (the seal " +
          "records the chain's validation)",
      );
    }
    const dir = quietly(() => config.str("postwarden_dkim_key_directory").trim()) ?? "";
    const key = quietly(() => config.str("postwarden_arc_seal_key").trim()) ?? "";
    const path = key.startsWith("/") ? key : `${dir}/${key}`;
    if (!dir.startsWith("/") || !path.startsWith(`${dir}/`) || path.split("/").includes("..")) {
      fatal(
        ["postwarden_arc_seal_key", "postwarden_dkim_key_directory"],
        `postwarden_arc_seal_key: "${key}" is not a file in postwarden_dkim_key_directory`,
      );
    }
  }
  // By default it is $mynetworks, whose errors are reported under that name.
  const internal = config.isSet("postwarden_dkim_internal_hosts")
    ? quietly(() => config.list("postwarden_dkim_internal_hosts")) ?? []
    : [];
  for (const e of parseNetworkList("postwarden_dkim_internal_hosts", internal).errors) {
    fatal(["postwarden_dkim_internal_hosts"], e);
  }
  return out;
}

/**
 * Everything in the configuration that Postwarden does not implement as
 * set, plus partly implemented values. Never throws for a bad value: type
 * and expansion errors are left to the typed accessors (validate.ts).
 */
export function supportProblems(config: Config): ConfigProblem[] {
  const lookup: Lookup = (n) => config.raw(n) ?? POSTFIX_DEFAULTS.get(n);
  return [...tableParams(config, lookup), ...postfixParams(config, lookup), ...valueChecks(config)];
}
