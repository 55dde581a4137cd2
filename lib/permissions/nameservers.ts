/**
 * The name servers daemons ask, as the sandboxes grant them: those of
 * postwarden_dns_servers when set (each with its port), else the
 * `nameserver` lines of /etc/resolv.conf (port 53). A bare address means
 * port 53; "192.0.2.53:5353" and "[2001:db8::53]:5353" carry their port.
 *
 * @module
 */
import { parseNameServers } from "../dns/confirm.ts";

/** The name servers of resolv.conf text (every `nameserver` line, scope ids dropped). */
export function parseResolvConf(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) out.push(m[1].replace(/%.*$/, ""));
  }
  return out;
}

/**
 * The name servers of a configuration: postwarden_dns_servers' value
 * (`setting`, which must be valid: lib/config support.ts checks it), else
 * resolv.conf's (none when it cannot be read).
 */
export async function daemonNameservers(
  setting: string,
  resolvConf = "/etc/resolv.conf",
): Promise<string[]> {
  if (setting.trim()) {
    return parseNameServers(setting).map((ns) =>
      ns.ipAddr.includes(":") ? `[${ns.ipAddr}]:${ns.port}` : `${ns.ipAddr}:${ns.port}`
    );
  }
  return parseResolvConf(await Deno.readTextFile(resolvConf).catch(() => ""));
}

/** The name servers as `--allow-net` items: Deno.resolveDns (UDP) and lib/dns's TCP queries. */
export function nameserverGrants(nameservers: string[]): string[] {
  return nameservers.map((ns) =>
    ns.startsWith("[") || /^\d+\.\d+\.\d+\.\d+:\d+$/.test(ns)
      ? ns
      : ns.includes(":")
      ? `[${ns}]:53`
      : `${ns}:53`
  );
}
