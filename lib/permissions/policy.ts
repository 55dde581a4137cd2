/**
 * What smtpd's sandbox needs for check_policy_service and smtpd_milters
 * (milterGrants). For policy services: exactly the
 * endpoints its restriction lists and restriction classes name (with the
 * service's master.cf `-o` overrides, which `param` applies), an
 * `inet:host:port` as that host:port, a `unix:` socket as read, write and
 * net on its path (`unix:private/policy` under queue_directory). A
 * malformed argument gets no grant (smtpd answers 451 4.3.5 when mail
 * reaches it; `postwarden check` reports it).
 *
 * @module
 */
import { policyServicesOf, RESTRICTION_LISTS, restrictionItems } from "../config/mod.ts";
import { parseMilterList } from "../milter/config.ts";

/** The restriction lists smtpd reads, and the classes smtpd_restriction_classes names. */
function restrictionLists(param: (name: string) => string): string[][] {
  const value = (name: string) => {
    try {
      return param(name) ?? "";
    } catch {
      return ""; // a class without definition: smtpd warns about it
    }
  };
  const classes = value("smtpd_restriction_classes").split(/[\s,]+/).filter((n) =>
    /^[A-Za-z0-9_]+$/.test(n)
  );
  return [...RESTRICTION_LISTS, ...classes].map((n) => restrictionItems(value(n)));
}

/** The policy servers' grants: `net` items and unix socket paths. */
export function policyGrants(
  param: (name: string) => string,
  queueDir: string,
): { net: string[]; sockets: string[] } {
  const out = { net: [] as string[], sockets: [] as string[] };
  for (const svc of policyServicesOf(restrictionLists(param), queueDir).services) {
    const ep = svc.endpoint;
    if (ep.kind === "unix") out.sockets.push(ep.path);
    else out.net.push(ep.host.includes(":") ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`);
  }
  return out;
}

/**
 * The milters' grants (smtpd_milters): an `inet:host:port` as that
 * host:port, a `unix:` socket as read, write and net on its path (a
 * relative one under queue_directory, as Postfix). A list that does not
 * parse gets no grant: the start refuses it (lib/config support.ts).
 */
export function milterGrants(
  value: string,
  queueDir: string,
): { net: string[]; sockets: string[] } {
  const out = { net: [] as string[], sockets: [] as string[] };
  let entries;
  try {
    entries = parseMilterList(value);
  } catch {
    return out;
  }
  for (const { endpoint: ep } of entries) {
    if (ep.kind === "unix") {
      out.sockets.push(ep.path.startsWith("/") ? ep.path : `${queueDir}/${ep.path}`);
    } else {out.net.push(
        ep.host.includes(":") ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`,
      );}
  }
  return out;
}
