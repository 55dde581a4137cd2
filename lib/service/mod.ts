/**
 * The shared daemon skeleton, like Postfix's single_server/multi_server:
 * a daemon's main.ts hands it a name and a service function, and the
 * skeleton parses master's arguments, takes its configuration from master
 * (on stdin: a daemon cannot read the configuration directory), logs to
 * stderr (master is the one log writer), binds the service's endpoint
 * (`private/NAME`, `public/NAME`, or TCP for inet services), runs the
 * handler per connection, and stops cleanly on SIGTERM/SIGINT.
 *
 * A daemon knows nothing of how it is hosted: everything arrives in the
 * {@link ServiceContext}, including the paths of the peers it may talk to.
 */
import { type Config, makeConfig, type MasterService } from "../config/mod.ts";
import { parseNameServers, useNameServers } from "../dns/confirm.ts";
import {
  acceptLoop,
  type IpcConn,
  ipcListen,
  type IpcServer,
  setIpcWaker,
  unixListen,
} from "../ipc/mod.ts";
import { fileSink, Logger, type LogSink, stderrSink } from "../log/mod.ts";
import { clientsOf, peerSocket, peersOf, proxymapService } from "../permissions/peers.ts";
import { type MapsOpener, mapsOpener } from "./maps.ts";
import type { TlsMaterial } from "../tls/material.ts";

export { type MapsOpener, mapsOpener };
import { QueueDir } from "../queue/mod.ts";
import { type DaemonArgs, parseDaemonArgs } from "./args.ts";
import { endpointText, inetEndpoints } from "./endpoints.ts";
import { startsOnDemand, wakeService } from "./wake.ts";
import { exitWorker, inWorker, onWorkerSignal, workerStart } from "./worker.ts";

/** Longest a draining daemon (after a reload) waits for its sessions. */
const DRAIN_MS = 600_000;

/** What a daemon gets from its host. */
export interface ServiceContext {
  config: Config;
  log: Logger;
  queue: QueueDir;
  args: DaemonArgs;
  /** The master.cf services master runs (qmgr maps transports to them). */
  services: MasterService[];
  /** Socket path through which this daemon reaches the service `name`. */
  peer(name: string): string;
  /** Aborted when the daemon is asked to stop. */
  signal: AbortSignal;
  /** Opens the tables a parameter names (through proxymap where it runs); the caller keeps them. */
  maps: MapsOpener;
  /** smtpd's certificate and key as master read them (lib/tls/material.ts); null: none. */
  tls?: TlsMaterial | null;
}

/** What master writes on a daemon's stdin: its whole configuration. */
export interface DaemonHandoff {
  /** Configuration directory (for $config_directory; the daemon cannot read it). */
  configDir: string;
  /** main.cf text. */
  mainCf: string;
  /** Settings over main.cf: master's path overrides, then the service's `-o`. */
  overrides: Record<string, string>;
  /** Host name for the myhostname default. */
  hostname: string;
  /** Files that main.cf values name (myorigin = /etc/mailname), as master read them. */
  files: Record<string, string>;
  /** The services master runs. */
  services: MasterService[];
  /** For smtpd with TLS: its certificate and private key, read by master (smtpd cannot read the key file). */
  tls?: TlsMaterial;
}

/** The configuration a daemon runs with, from master's handoff. */
export function handoffConfig(h: DaemonHandoff): Config {
  return makeConfig(h.configDir, h.mainCf, {
    overrides: h.overrides,
    hostname: h.hostname,
    files: h.files,
  });
}

async function readHandoff(): Promise<DaemonHandoff> {
  if (Deno.stdin.isTerminal()) {
    throw new Error("must be started by master (no configuration on stdin)");
  }
  const text = await new Response(Deno.stdin.readable).text();
  if (!text) throw new Error("must be started by master (no configuration on stdin)");
  return JSON.parse(text) as DaemonHandoff;
}

/** A daemon definition. */
export interface ServiceDefinition {
  /** Program name for logs, e.g. "smtpd". */
  program: string;
  /** Called once before listening; may start background loops. */
  init?: (ctx: ServiceContext) => Promise<void> | void;
  /** Per-connection handler for unix services. */
  onIpc?: (conn: IpcConn, ctx: ServiceContext) => Promise<void>;
  /**
   * Per-connection handler for inet services. It owns the connection and
   * closes it before it resolves; when it rejects, the host closes it.
   */
  onInet?: (conn: Deno.TcpConn, ctx: ServiceContext) => Promise<void>;
  /**
   * Per-connection handler for "pass" services (smtpd behind postscreen):
   * a byte stream on the service's UNIX socket, owned like onInet's.
   */
  onPass?: (conn: Deno.UnixConn, ctx: ServiceContext) => Promise<void>;
  /** Called at stop, before exit. */
  stop?: (ctx: ServiceContext) => Promise<void> | void;
}

/** Builds the logger for a client program (sendmail, postqueue, ...) from its config. */
export function makeLogger(
  config: Config,
  program: string,
  opts: { stderr: boolean },
): Logger {
  const sinks: LogSink[] = [];
  const file = config.str("maillog_file");
  if (file) {
    try {
      sinks.push(fileSink(file));
    } catch (e) {
      opts.stderr = true;
      Deno.stderr.writeSync(
        new TextEncoder().encode(`${program}: warning: cannot open maillog_file ${file}: ${e}\n`),
      );
    }
  }
  if (opts.stderr || sinks.length === 0) sinks.push(stderrSink());
  return new Logger({
    program: `${config.str("syslog_name")}/${program}`,
    hostname: config.str("myhostname"),
    sinks,
  });
}

/** True when this daemon runs as root (only local, pipe and virtual may; others cannot ask). */
function asRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

/** How long a daemon exiting idle lets a connection it had just accepted finish. */
const IDLE_EXIT_GRACE_MS = 60_000;

/**
 * Runs a daemon until it is told to stop, or, for a service started on
 * demand (wake.ts), until it has been idle for max_idle. Never returns
 * normally.
 *
 * The same in a process and in a Worker of a worker host (hosting.ts):
 * there, the arguments and configuration come in the host's first message,
 * master's signals as messages, and the exit status is sent to the host
 * (worker.ts).
 */
export async function runService(def: ServiceDefinition): Promise<never> {
  const worker = inWorker();
  const exit: (code: number) => never = worker ? exitWorker : Deno.exit;
  let args: DaemonArgs;
  let config: Config;
  let handoff: DaemonHandoff;
  try {
    if (worker) {
      const start = await workerStart();
      args = parseDaemonArgs(start.args);
      handoff = start.handoff as DaemonHandoff;
    } else {
      args = parseDaemonArgs(Deno.args);
      handoff = await readHandoff();
    }
    config = handoffConfig(handoff);
    // Every resolver of this process asks these, when set (lib/dns).
    useNameServers(parseNameServers(config.str("postwarden_dns_servers")));
  } catch (e) {
    console.error(`${def.program}: fatal: ${(e as Error).message}`);
    exit(1);
  }
  const log = new Logger({
    program: `${config.str("syslog_name")}/${def.program}`,
    hostname: config.str("myhostname"),
    sinks: [stderrSink()],
  });
  const abort = new AbortController();
  const queueDir = config.str("queue_directory");
  const self = { type: args.type, name: args.service };
  const me = handoff.services.find((s) => s.type === args.type && s.name === args.service);
  const proxymap = proxymapService(handoff.services);
  const proxySocket = me && proxymap && peersOf(me, handoff.services).includes(proxymap.name)
    ? peerSocket(queueDir, self, proxymap.name)
    : null;
  const ctx: ServiceContext = {
    config,
    log,
    queue: new QueueDir(queueDir),
    args,
    services: handoff.services,
    peer: (name) => peerSocket(queueDir, self, name),
    signal: abort.signal,
    maps: mapsOpener((m) => log.warn(m), proxySocket),
    tls: handoff.tls ?? null,
  };
  const inflight = new Set<Promise<void>>();
  let idleSince = Date.now();
  const track = (p: Promise<void>) => {
    inflight.add(p);
    p.finally(() => {
      inflight.delete(p);
      if (inflight.size === 0) idleSince = Date.now();
    });
  };
  // Peers master starts on demand (wake.ts): a connection that finds none wakes it.
  const onDemandPeers = new Map<string, string>();
  for (const s of handoff.services) {
    if (startsOnDemand(s)) onDemandPeers.set(peerSocket(queueDir, self, s.name), s.name);
  }
  if (onDemandPeers.size > 0) {
    setIpcWaker(async (path) => {
      const name = onDemandPeers.get(path);
      if (name === undefined) return false;
      await wakeService(queueDir, name);
      return true;
    });
  }
  const closers: (() => void)[] = [];
  /**
   * Unix listeners are left open when draining: Deno unlinks the socket
   * path on close, and by then the path belongs to the new daemon. Nobody
   * can reach the old socket anyway once its path is replaced.
   */
  const unixClosers: (() => void)[] = [];

  try {
    await def.init?.(ctx);
    if (args.type === "inet") {
      if (!def.onInet) throw new Error(`${def.program} cannot serve inet services`);
      const ifaces = config.list("inet_interfaces");
      for (const ep of inetEndpoints(args.service, ifaces)) {
        let listener: Deno.TcpListener;
        try {
          // SO_REUSEPORT: on reload the new smtpd binds while the old one
          // still finishes its sessions.
          listener = Deno.listen({ hostname: ep.hostname, port: ep.port, reusePort: true });
        } catch (e) {
          throw new Error(`bind ${endpointText(ep)}: ${(e as Error).message}`);
        }
        const loop = acceptLoop(listener, (conn) => {
          // Not closed again after the handler: a second close throws (and
          // builds) a BadResource error, a cost on every connection.
          track(
            def.onInet!(conn, ctx).catch((e) => {
              log.warn(`${endpointText(ep)}: ${e}`);
              try {
                conn.close();
              } catch {
                // closed by handler
              }
            }),
          );
        }, { onError: (e) => log.warn(`accept ${endpointText(ep)}: ${e.message}`) });
        closers.push(() => loop.close());
      }
    } else if (args.type === "pass") {
      if (!def.onPass) throw new Error(`${def.program} cannot serve pass services`);
      const path = args.publicService
        ? ctx.queue.publicSocket(args.service)
        : ctx.queue.privateSocket(args.service);
      const server = unixListen(path, (conn) => {
        track(
          def.onPass!(conn, ctx).catch((e) => {
            log.warn(`${args.service}: ${e}`);
            try {
              conn.close();
            } catch {
              // closed by handler
            }
          }),
        );
      }, { onError: (e) => log.warn(`accept ${path}: ${e.message}`) });
      unixClosers.push(() => server.close());
    } else if (def.onIpc) {
      const own = !args.publicService
        ? ctx.queue.privateSocket(args.service)
        : ctx.queue.publicSocket(args.service);
      const paths = [
        own,
        ...(me && me.type === "unix"
          ? clientsOf(me, handoff.services, (n) => config.str(n))
            .map((c) => peerSocket(queueDir, c, me.name))
          : []),
      ];
      for (const path of paths) {
        const server: IpcServer = ipcListen(
          path,
          (conn) => {
            const p = def.onIpc!(conn, ctx);
            track(p.catch(() => {}));
            return p;
          },
          { onError: (e) => log.warn(`${args.service}: ${e.message}`) },
        );
        // A public socket (private=n) is for local users' commands: anyone may connect.
        // A daemon master started as root (local, pipe, virtual: catalog.ts runsAsRoot)
        // opens its sockets to qmgr, which runs as mail_owner; the folders around them
        // (private/, peer/) are mail_owner's own, mode 0700, as Postfix's.
        if ((path === own && args.publicService) || asRoot()) Deno.chmodSync(path, 0o666);
        unixClosers.push(() => server.close());
      }
    }
  } catch (e) {
    log.fatal(`${(e as Error).message}`);
    exit(1);
  }

  /**
   * Stops accepting, lets work in progress finish for `graceMs`, exits.
   * SIGTERM/SIGINT: a few seconds (everything is on disk; peers retry).
   * SIGUSR2 (master's reload): until every session is done, as Postfix's
   * daemons finish their current client after a reload.
   */
  const stop = async (graceMs = 3000, draining = false) => {
    if (abort.signal.aborted) return;
    abort.abort();
    for (const c of draining ? closers : [...closers, ...unixClosers]) {
      try {
        c();
      } catch {
        // already closed
      }
    }
    const grace = new Promise((r) => setTimeout(r, graceMs));
    await Promise.race([Promise.allSettled([...inflight]), grace]);
    try {
      await def.stop?.(ctx);
    } catch (e) {
      log.warn(`stop: ${e}`);
    }
    exit(0);
  };
  // Started on demand: exit after max_idle seconds without a connection, as
  // Postfix's daemons do; the sockets go first, so a new client wakes a new one.
  if (me && startsOnDemand(me)) {
    const maxIdleMs = config.time("max_idle") * 1000;
    const idle = setInterval(() => {
      if (inflight.size === 0 && Date.now() - idleSince >= maxIdleMs) {
        clearInterval(idle);
        // A connection accepted just before the sockets closed is served out.
        void stop(IDLE_EXIT_GRACE_MS);
      }
    }, Math.min(1000, maxIdleMs));
  }
  if (worker) {
    // Signals are the host process's; master's reach this daemon as messages.
    onWorkerSignal((sig) => sig === "SIGUSR2" ? stop(DRAIN_MS, true) : stop());
  } else {
    for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => stop());
    Deno.addSignalListener("SIGUSR2", () => stop(DRAIN_MS, true));
  }
  // A daemon never outlives its master: when master dies (even by SIGKILL)
  // the daemon is re-parented, and it stops, as Postfix daemons do.
  const parent = Deno.ppid;
  setInterval(() => {
    if (Deno.ppid !== parent) {
      log.warn("master process went away; exiting");
      void stop();
    }
  }, 1000);
  // The event loop keeps running on the listeners; this promise never settles.
  return await new Promise<never>(() => {});
}
