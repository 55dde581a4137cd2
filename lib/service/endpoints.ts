/**
 * Where each service listens, computed from master.cf and main.cf. Pure:
 * the service skeleton uses it to bind, lib/permissions to grant exactly
 * those endpoints.
 */

/** A TCP listening address. */
export interface InetEndpoint {
  hostname: string;
  port: number;
}

/** Postfix's well-known ports for service names used as inet service names. */
const SERVICE_PORTS: Record<string, number> = {
  smtp: 25,
  submission: 587,
  submissions: 465,
  smtps: 465,
  lmtp: 24,
};

/**
 * Addresses an inet service binds. The service name is `port`, `name`
 * (a well-known service), or `host:port` (overrides inet_interfaces).
 */
export function inetEndpoints(service: string, inetInterfaces: string[]): InetEndpoint[] {
  let host: string | null = null;
  let portText = service;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(.+)$/.exec(service);
  if (m) {
    host = m[1] ?? m[2];
    portText = m[3];
  }
  const port = /^\d+$/.test(portText)
    ? Number(portText)
    : Object.hasOwn(SERVICE_PORTS, portText)
    ? SERVICE_PORTS[portText]
    : undefined;
  if (!port || port > 65535) throw new Error(`master.cf: bad inet service name "${service}"`);
  const hosts = host !== null ? [host] : interfaces(inetInterfaces);
  return hosts.map((hostname) => ({ hostname, port }));
}

function interfaces(list: string[]): string[] {
  const out: string[] = [];
  for (const item of list) {
    const v = item.toLowerCase();
    if (v === "all") out.push("0.0.0.0");
    else if (v === "loopback-only") out.push("127.0.0.1");
    else out.push(item.replace(/^\[|\]$/g, ""));
  }
  return out.length ? out : ["127.0.0.1"];
}

/** Formats an endpoint for `--allow-net` and for logs. */
export function endpointText(e: InetEndpoint): string {
  return e.hostname.includes(":") ? `[${e.hostname}]:${e.port}` : `${e.hostname}:${e.port}`;
}
