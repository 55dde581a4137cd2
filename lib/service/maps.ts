/**
 * How a daemon opens the tables a parameter names: once per process
 * (the same Maps for every later use), warnings to its log, and through
 * proxymap when master runs it and the table is `proxy:` or needs the
 * network (lib/maps proxy_client.ts). A daemon never decides this itself.
 *
 * @module
 */
import type { Config } from "../config/mod.ts";
import type { Logger } from "../log/mod.ts";
import { Maps, ProxyClient } from "../maps/mod.ts";

/** Opens the tables of a parameter, once. */
export type MapsOpener = (param: string) => Promise<Maps>;

/**
 * A {@link MapsOpener} for one daemon. `proxySocket` is the daemon's
 * proxymap socket, or null when proxymap does not run.
 */
export function mapsOpener(config: Config, log: Logger, proxySocket: string | null): MapsOpener {
  const proxy = proxySocket ? new ProxyClient(proxySocket) : null;
  const open = new Map<string, Promise<Maps>>();
  return (param) => {
    let p = open.get(param);
    if (!p) {
      p = Maps.open(param, config.str(param), {
        warn: (m) => log.warn(m),
        proxy: proxy ? (spec, fold) => proxy.dict(spec, fold) : undefined,
      });
      // A table that failed to open is retried at the next use.
      p.catch(() => open.delete(param));
      open.set(param, p);
    }
    return p;
  };
}
