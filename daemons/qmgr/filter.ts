/**
 * Content filter routing, as Postfix's qmgr_message_resolve: a message
 * whose queue file names a content filter (content_filter, or a FILTER
 * action: "transport:destination") is not resolved recipient by
 * recipient; every recipient goes to the filter's transport and next hop.
 * Without a next hop ("transport" or "transport:") the next hop is
 * default_filter_nexthop, else the recipient's domain, else myhostname.
 * The recipient address is delivered as queued (no rewriting: the filter
 * re-injects the message, which is resolved then).
 *
 * That the transport exists in master.cf is the caller's check: a message
 * for a filter that does not exist is deferred, never delivered unfiltered.
 * No I/O.
 */

/** What filter routing reads from the configuration. */
export interface FilterParams {
  /** default_filter_nexthop. */
  defaultNexthop: string;
  /** myhostname. */
  myhostname: string;
}

/** The transport and next hop of one recipient of a filtered message. */
export function filterRoute(
  filter: string,
  recipient: string,
  p: FilterParams,
): { transport: string; nexthop: string } {
  const colon = filter.indexOf(":");
  const transport = colon < 0 ? filter : filter.slice(0, colon);
  let nexthop = colon < 0 ? "" : filter.slice(colon + 1);
  if (nexthop === "") nexthop = p.defaultNexthop;
  if (nexthop === "") {
    const at = recipient.lastIndexOf("@");
    nexthop = at >= 0 ? recipient.slice(at + 1) : "";
  }
  if (nexthop === "") nexthop = p.myhostname;
  return { transport, nexthop: nexthop.toLowerCase() };
}
