/**
 * Which content filters (content_filter, in main.cf or as a `-o` of an
 * smtpd or pickup service in master.cf) a delivery service carries mail
 * to, and their next hops, so that the smtp client's --allow-net follows
 * the configured filters exactly (e.g. `content_filter =
 * smtp:[127.0.0.1]:10024` grants smtp 127.0.0.1:10024 and nothing more).
 * A filter without a next hop uses default_filter_nexthop, else the
 * recipient's domain (returned as "": the caller grants what a domain
 * needs). FILTER actions in access tables, policy answers or header_checks
 * are table contents, not configuration the start can read: their
 * destinations are granted only when content_filter or
 * postwarden_filter_destinations names them (a filter the sandbox does
 * not reach is a deferral, never an unfiltered delivery).
 */
import type { MasterService } from "../config/mod.ts";

/** The next hops of the content filters whose transport is `svc`. */
export function contentFilterNexthops(
  svc: MasterService,
  services: MasterService[],
  param: (name: string) => string,
): string[] {
  const main = param("content_filter") ?? "";
  const filters = new Set<string>();
  for (const s of services) {
    if (s.command !== "smtpd" && s.command !== "pickup") continue;
    const f = Object.hasOwn(s.overrides, "content_filter") ? s.overrides.content_filter : main;
    if (f.trim()) filters.add(f.trim());
  }
  const listed = (param("postwarden_filter_destinations") ?? "").split(/[\s,]+/);
  for (const f of listed) if (f) filters.add(f);
  const out = new Set<string>();
  for (const f of filters) {
    const colon = f.indexOf(":");
    const transport = colon < 0 ? f : f.slice(0, colon);
    if (transport !== svc.name) continue;
    out.add(
      (colon < 0 ? "" : f.slice(colon + 1)) || (param("default_filter_nexthop") ?? "").trim(),
    );
  }
  return [...out];
}
