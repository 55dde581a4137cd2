/**
 * Milter configuration as Postfix writes it: the smtpd_milters and
 * non_smtpd_milters lists, and the milter_* parameters that apply to
 * every milter unless the milter's entry overrides them.
 *
 * ```
 * smtpd_milters = inet:127.0.0.1:8891, unix:/run/opendkim.sock
 * smtpd_milters = { inet:[::1]:8891, connect_timeout=10s, default_action=accept }
 * smtpd_milters = { unix:private/spam, { protocol = 4 no_header_reply } }
 * ```
 *
 * Entries are separated by commas and/or white space. An endpoint is
 * `inet:host:port` (an IPv6 host in brackets), `unix:path` or its alias
 * `local:path`; a relative path is under queue_directory, the daemons'
 * working directory in Postfix. Postfix accepts no `inet6:` endpoint for
 * milters (milter8.c knows inet, unix and local), and neither does this.
 * In braces, the endpoint comes first; then `name=value` settings, a
 * value with spaces itself in braces. The settings are the parameter
 * names without their `milter_` prefix (Postfix's milter.c):
 * connect_timeout, command_timeout, content_timeout, default_action and
 * protocol.
 *
 * Parameters read by {@link resolveMilterSettings}, with Postfix 3.7's
 * defaults ({@link MILTER_PARAMETER_DEFAULTS}): milter_connect_timeout
 * (30s), milter_command_timeout (30s), milter_content_timeout (300s),
 * milter_default_action (tempfail), milter_protocol (6), the macro lists
 * milter_connect_macros, milter_helo_macros, milter_mail_macros,
 * milter_rcpt_macros, milter_data_macros, milter_end_of_header_macros,
 * milter_end_of_data_macros, milter_unknown_command_macros, and
 * queue_directory.
 *
 * Pure: no I/O. Errors are plain Errors naming the bad part; the
 * configuration layer turns them into startup errors.
 *
 * @module
 */

import type { MilterStage, MilterVersion } from "./protocol.ts";

/** Where a milter listens. */
export type MilterEndpoint =
  | { kind: "inet"; host: string; port: number }
  | { kind: "unix"; path: string };

/** The per-milter settings accepted in braces. */
export const MILTER_OVERRIDES = [
  "connect_timeout",
  "command_timeout",
  "content_timeout",
  "default_action",
  "protocol",
] as const;

/** One per-milter setting's name. */
export type MilterOverride = typeof MILTER_OVERRIDES[number];

/** One entry of smtpd_milters or non_smtpd_milters. */
export interface MilterEntry {
  /** The endpoint as written (`inet:127.0.0.1:8891`): the milter's name in logs. */
  name: string;
  endpoint: MilterEndpoint;
  /** Settings given in braces, checked but as written. */
  overrides: Partial<Record<MilterOverride, string>>;
}

/** What happens when a milter is unavailable or misbehaves (milter_default_action). */
export type MilterDefaultAction = "accept" | "reject" | "tempfail" | "quarantine";

/** One milter's settings after the main.cf defaults and its own overrides. */
export interface MilterSettings {
  /** The endpoint as written, for log lines. */
  name: string;
  /** Where to connect; a relative unix path is already under queue_directory. */
  endpoint: MilterEndpoint;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  contentTimeoutMs: number;
  defaultAction: MilterDefaultAction;
  /** The protocol version asked for. */
  protocol: MilterVersion;
  /** milter_protocol's `no_header_reply`: the milter sends no reply per header. */
  noHeaderReply: boolean;
  /** Macro names to send at each stage, as the lists spell them ("j", "{daemon_name}"). */
  macros: Record<MilterStage, readonly string[]>;
}

/** The main.cf parameter with each stage's macro list. */
export const MACRO_PARAMETERS: Readonly<Record<MilterStage, string>> = {
  connect: "milter_connect_macros",
  helo: "milter_helo_macros",
  mail: "milter_mail_macros",
  rcpt: "milter_rcpt_macros",
  data: "milter_data_macros",
  eoh: "milter_end_of_header_macros",
  eom: "milter_end_of_data_macros",
  unknown: "milter_unknown_command_macros",
};

/** Postfix 3.7's defaults (`postconf -d`) of the parameters read here, for the parameter table. */
export const MILTER_PARAMETER_DEFAULTS: Readonly<Record<string, string>> = {
  milter_connect_timeout: "30s",
  milter_command_timeout: "30s",
  milter_content_timeout: "300s",
  milter_default_action: "tempfail",
  milter_protocol: "6",
  milter_connect_macros: "j {daemon_name} {daemon_addr} v _",
  milter_helo_macros: "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
  milter_mail_macros: "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} " +
    "{mail_mailer}",
  milter_rcpt_macros: "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
  milter_data_macros: "i",
  milter_end_of_header_macros: "i",
  milter_end_of_data_macros: "i",
  milter_unknown_command_macros: "",
};

const SEPARATORS = /[\s,]/;

/**
 * Splits a list on commas and white space outside braces, as Postfix's
 * mystrtokq: `a, {b c}, d` gives `a`, `{b c}`, `d`. Unbalanced braces
 * are an error.
 */
function splitList(s: string, what: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let start = -1;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s[i] : " ";
    if (c === "{") depth++;
    else if (c === "}") {
      if (--depth < 0) throw new Error(`${what}: unexpected '}' in "${s}"`);
    }
    if (depth === 0 && SEPARATORS.test(c)) {
      if (start >= 0) items.push(s.slice(start, i));
      start = -1;
    } else if (start < 0) start = i;
  }
  if (depth > 0) throw new Error(`${what}: missing '}' in "${s}"`);
  return items;
}

/** The inside of `{ ... }` (Postfix's extpar): text after the closing brace is an error. */
function unbrace(item: string, what: string): string {
  if (!item.endsWith("}")) throw new Error(`${what}: text after '}' in "${item}"`);
  return item.slice(1, -1).trim();
}

/** Parses an endpoint as Postfix's milter8.c and inet_connect/unix_connect take it. */
export function parseMilterEndpoint(server: string): MilterEndpoint {
  const colon = server.indexOf(":");
  const transport = colon < 0 ? "" : server.slice(0, colon);
  const rest = server.slice(colon + 1);
  if (transport === "inet") {
    const m = /^(?:\[([^\]\s]+)\]|([^:\[\]\s]+)):(\d{1,5})$/.exec(rest);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) {
      throw new Error(
        `milter service "${server}": expected inet:host:port with a numeric port ` +
          `(an IPv6 address in brackets: inet:[::1]:8891)`,
      );
    }
    return { kind: "inet", host: m[1] ?? m[2], port };
  }
  if (transport === "unix" || transport === "local") {
    if (rest === "" || /[\s\0{}]/.test(rest)) {
      throw new Error(`milter service "${server}": bad socket path`);
    }
    return { kind: "unix", path: rest };
  }
  if (colon < 0) {
    throw new Error(`milter service needs transport:endpoint instead of "${server}"`);
  }
  throw new Error(
    `invalid transport name "${transport}" in milter service "${server}" ` +
      `(expected inet, unix or local)`,
  );
}

/**
 * Parses the value of smtpd_milters or non_smtpd_milters. Throws an Error
 * naming the bad entry or setting.
 */
export function parseMilterList(value: string): MilterEntry[] {
  return splitList(value, "milter list").map(parseEntry);
}

function parseEntry(item: string): MilterEntry {
  if (!item.startsWith("{")) {
    return { name: item, endpoint: parseMilterEndpoint(item), overrides: {} };
  }
  const parts = splitList(unbrace(item, "milter service"), "milter service");
  if (parts.length === 0) throw new Error(`empty milter definition "${item}"`);
  const name = parts[0];
  const endpoint = parseMilterEndpoint(name);
  const overrides: Partial<Record<MilterOverride, string>> = {};
  for (const part of parts.slice(1)) {
    const setting = part.startsWith("{") ? unbrace(part, `milter ${name}`) : part;
    const eq = setting.indexOf("=");
    if (eq < 0) throw new Error(`milter ${name}: missing '=' after attribute name in "${part}"`);
    const key = setting.slice(0, eq).trim();
    const raw = setting.slice(eq + 1).trim();
    if (!(MILTER_OVERRIDES as readonly string[]).includes(key)) {
      throw new Error(
        `milter ${name}: unknown attribute name "${key}" ` +
          `(expected one of ${MILTER_OVERRIDES.join(", ")})`,
      );
    }
    checkSetting(key as MilterOverride, raw, `milter ${name}: ${key}`);
    overrides[key as MilterOverride] = raw;
  }
  return { name, endpoint, overrides };
}

/** Validates one setting's value (the same rules for main.cf and braces). */
function checkSetting(key: MilterOverride, value: string, what: string): void {
  if (key === "default_action") parseDefaultAction(value, what);
  else if (key === "protocol") parseProtocol(value, what);
  else parseTime(value, what);
}

const TIME_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/**
 * A Postfix time value in milliseconds: a number and an optional unit
 * (s, m, h, d, w; none means seconds), at least one second as Postfix
 * requires of the milter timeouts.
 */
export function parseTime(value: string, what: string): number {
  const m = /^(\d+)([smhdw]?)$/.exec(value.trim());
  const seconds = m ? Number(m[1]) * TIME_UNITS[m[2] || "s"] : 0;
  if (!m || !Number.isSafeInteger(seconds) || seconds < 1) {
    throw new Error(`${what}: bad time value "${value}" (a number with unit s, m, h, d or w)`);
  }
  return seconds * 1000;
}

function parseDefaultAction(value: string, what: string): MilterDefaultAction {
  const v = value.trim().toLowerCase();
  if (v === "accept" || v === "reject" || v === "tempfail" || v === "quarantine") return v;
  throw new Error(
    `${what}: bad default action "${value}" (expected accept, reject, tempfail or quarantine)`,
  );
}

/** milter_protocol: one version (2, 3, 4 or 6) and optionally `no_header_reply`. */
function parseProtocol(value: string, what: string): { version: MilterVersion; nr: boolean } {
  let version: MilterVersion | null = null;
  let nr = false;
  for (const word of value.split(/[\s,]+/).filter((w) => w !== "")) {
    if (word === "no_header_reply") nr = true;
    else if (["2", "3", "4", "6"].includes(word) && version === null) {
      version = Number(word) as MilterVersion;
    } else {
      throw new Error(`${what}: bad protocol information "${word}" in "${value}"`);
    }
  }
  if (version === null) throw new Error(`${what}: no protocol version in "${value}"`);
  return { version, nr };
}

/** A macro list: names separated by commas or white space. */
function parseMacroList(value: string): string[] {
  return value.split(/[\s,]+/).filter((n) => n !== "");
}

/**
 * One milter's settings: its overrides, else the main.cf parameters that
 * `params` returns (undefined: Postfix's default). Throws an Error naming
 * the parameter with a bad value.
 */
export function resolveMilterSettings(
  entry: MilterEntry,
  params: (name: string) => string | undefined,
): MilterSettings {
  const param = (name: string) => params(name) ?? MILTER_PARAMETER_DEFAULTS[name] ?? "";
  const pick = (key: MilterOverride): [string, string] =>
    entry.overrides[key] !== undefined
      ? [entry.overrides[key]!, `milter ${entry.name}: ${key}`]
      : [param(`milter_${key}`), `milter_${key}`];
  const time = (key: MilterOverride) => parseTime(...pick(key));
  const protocol = parseProtocol(...pick("protocol"));
  const macros = {} as Record<MilterStage, readonly string[]>;
  for (const [stage, name] of Object.entries(MACRO_PARAMETERS)) {
    macros[stage as MilterStage] = parseMacroList(param(name));
  }
  let endpoint = entry.endpoint;
  if (endpoint.kind === "unix" && !endpoint.path.startsWith("/")) {
    const queueDir = (params("queue_directory") ?? "").replace(/\/+$/, "");
    if (queueDir !== "") endpoint = { kind: "unix", path: `${queueDir}/${endpoint.path}` };
  }
  return {
    name: entry.name,
    endpoint,
    connectTimeoutMs: time("connect_timeout"),
    commandTimeoutMs: time("command_timeout"),
    contentTimeoutMs: time("content_timeout"),
    defaultAction: parseDefaultAction(...pick("default_action")),
    protocol: protocol.version,
    noHeaderReply: protocol.nr,
    macros,
  };
}
