/**
 * How a daemon opens the tables a parameter names: warnings to its log,
 * and through proxymap when master runs it and the table is `proxy:` or
 * needs the network (lib/maps proxy_client.ts). A daemon never decides
 * this itself; it keeps what it opened for the life of the process.
 *
 * @module
 */
import { Maps, ProxyClient } from "../maps/mod.ts";

/** Opens the tables of `value` (a parameter's expanded value), named `title` in messages. */
export type MapsOpener = (title: string, value: string) => Promise<Maps>;

/**
 * A {@link MapsOpener} for one daemon. `proxySocket` is the daemon's
 * proxymap socket, or null when proxymap does not run (tests, commands).
 */
export function mapsOpener(
  warn: (message: string) => void,
  proxySocket: string | null = null,
): MapsOpener {
  const proxy = proxySocket ? new ProxyClient(proxySocket) : null;
  return (title, value) =>
    Maps.open(title, value, {
      warn,
      proxy: proxy ? (spec, fold) => proxy.dict(spec, fold) : undefined,
    });
}
