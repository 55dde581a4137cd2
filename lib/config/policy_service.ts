/**
 * `check_policy_service` arguments as Postfix 3.x writes them in a
 * restriction list: an endpoint (`inet:host:port`, `unix:private/policy`
 * relative to queue_directory, or `unix:/absolute/path`), alone or in
 * braces with per-service settings that override the
 * smtpd_policy_service_* parameters:
 *
 * ```
 * check_policy_service inet:127.0.0.1:10023
 * check_policy_service { unix:private/policy, timeout=10s, default_action=DUNNO }
 * check_policy_service { inet:127.0.0.1:9998, { default_action = 451 4.3.5 try later } }
 * ```
 *
 * A setting whose value has spaces is itself in braces, as in Postfix.
 * Shared by smtpd (which queries the service), lib/permissions (which
 * grants smtpd exactly these endpoints) and the configuration report.
 * Pure: no I/O.
 *
 * @module
 */

import { restrictionItems } from "./restrictions.ts";

/** The restriction name. */
export const CHECK_POLICY_SERVICE = "check_policy_service";

/** Per-service settings Postfix accepts inside the braces. */
export const POLICY_SETTINGS = [
  "timeout",
  "max_idle",
  "max_ttl",
  "try_limit",
  "retry_delay",
  "default_action",
  "policy_context",
] as const;

/** One setting's name. */
export type PolicySetting = typeof POLICY_SETTINGS[number];

/** Where a policy service listens. */
export type PolicyEndpoint =
  | { kind: "inet"; host: string; port: number }
  | { kind: "unix"; path: string };

/** A parsed check_policy_service argument. */
export interface PolicyService {
  /** The argument as written (the key for the process's connection pool and log lines). */
  spec: string;
  /** The endpoint as written (`inet:host:port`, `unix:private/policy`). */
  server: string;
  endpoint: PolicyEndpoint;
  /** Settings given in braces (raw values). */
  settings: Partial<Record<PolicySetting, string>>;
}

/** A malformed check_policy_service argument. */
export class PolicyServiceError extends Error {
  override readonly name = "PolicyServiceError";
}

/** Strips one pair of outer braces and the white space inside them. */
function unbrace(s: string): string {
  const t = s.trim();
  return t.startsWith("{") && t.endsWith("}") ? t.slice(1, -1).trim() : t;
}

/**
 * Parses an endpoint: `inet:host:port`, `inet:[v6]:port`, `unix:path`
 * (a relative path is under `queueDir`). Any other transport is an error.
 */
export function parsePolicyEndpoint(server: string, queueDir: string): PolicyEndpoint {
  const colon = server.indexOf(":");
  const type = colon < 0 ? "" : server.slice(0, colon).toLowerCase();
  const rest = server.slice(colon + 1);
  if (type === "inet") {
    const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(rest);
    const port = m ? Number(m[3]) : 0;
    if (!m || port < 1 || port > 65535) {
      throw new PolicyServiceError(`${CHECK_POLICY_SERVICE}: bad inet endpoint "${server}"`);
    }
    return { kind: "inet", host: m[1] ?? m[2], port };
  }
  if (type === "unix") {
    if (rest === "" || /[\s\0]/.test(rest) || rest.split("/").includes("..")) {
      throw new PolicyServiceError(`${CHECK_POLICY_SERVICE}: bad unix endpoint "${server}"`);
    }
    const path = rest.startsWith("/") ? rest : `${queueDir.replace(/\/+$/, "")}/${rest}`;
    return { kind: "unix", path };
  }
  throw new PolicyServiceError(
    `restriction ${CHECK_POLICY_SERVICE} must be followed by inet:host:port or unix:path ` +
      `(got "${server}")`,
  );
}

/** Parses one check_policy_service argument (the list item after the restriction name). */
export function parsePolicyService(spec: string, queueDir: string): PolicyService {
  const braced = spec.trim().startsWith("{");
  const parts = braced ? restrictionItems(unbrace(spec)) : [spec.trim()];
  if (parts.length === 0 || parts[0] === "") {
    throw new PolicyServiceError(`${CHECK_POLICY_SERVICE}: missing endpoint in "${spec}"`);
  }
  const server = parts[0];
  const settings: Partial<Record<PolicySetting, string>> = {};
  // "name = value" may arrive as three items ("name", "=", "value") or two.
  const rest = parts.slice(1);
  for (let i = 0; i < rest.length; i++) {
    let item = unbrace(rest[i]);
    if (!item.includes("=") && rest[i + 1]?.startsWith("=")) item += rest[++i];
    if (item.endsWith("=") && rest[i + 1] !== undefined) item += rest[++i];
    const eq = item.indexOf("=");
    if (eq <= 0) {
      throw new PolicyServiceError(
        `${CHECK_POLICY_SERVICE} ${server}: missing "=" in "${item}"`,
      );
    }
    const name = item.slice(0, eq).trim();
    if (!(POLICY_SETTINGS as readonly string[]).includes(name)) {
      throw new PolicyServiceError(
        `${CHECK_POLICY_SERVICE} ${server}: unknown attribute name "${name}" ` +
          `(expected one of ${POLICY_SETTINGS.join(", ")})`,
      );
    }
    const value = unbrace(item.slice(eq + 1));
    const bad = (name === "try_limit" && !/^[1-9]\d*$/.test(value)) ||
      (["timeout", "max_idle", "max_ttl", "retry_delay"].includes(name) &&
        !/^[1-9]\d*[smhdw]?$/.test(value));
    if (bad) {
      throw new PolicyServiceError(
        `${CHECK_POLICY_SERVICE} ${server}: bad ${name} value "${value}"`,
      );
    }
    settings[name as PolicySetting] = value;
  }
  return {
    spec,
    server,
    endpoint: parsePolicyEndpoint(server, queueDir),
    settings,
  };
}

/**
 * The check_policy_service arguments of restriction lists (already split
 * into items), in order, each once by spec. A restriction with no argument
 * is reported in `errors` (smtpd answers 451 4.3.5 when mail reaches it).
 */
export function policyServicesOf(
  lists: readonly (readonly string[])[],
  queueDir: string,
): { services: PolicyService[]; errors: string[] } {
  const seen = new Map<string, PolicyService>();
  const errors: string[] = [];
  for (const list of lists) {
    for (let i = 0; i < list.length; i++) {
      if (list[i].toLowerCase() !== CHECK_POLICY_SERVICE) continue;
      const arg = list[i + 1];
      i++;
      if (arg === undefined) {
        errors.push(`restriction ${CHECK_POLICY_SERVICE} must be followed by transport:server`);
        continue;
      }
      if (seen.has(arg)) continue;
      try {
        seen.set(arg, parsePolicyService(arg, queueDir));
      } catch (e) {
        if (!(e instanceof PolicyServiceError)) throw e;
        errors.push(e.message);
      }
    }
  }
  return { services: [...seen.values()], errors };
}
