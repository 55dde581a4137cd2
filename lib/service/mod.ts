/**
 * The shared daemon skeleton, like Postfix's single_server/multi_server:
 * a daemon's main.ts hands it a name and a service function, and the
 * skeleton parses master's arguments, loads main.cf with the master.cf
 * `-o` overrides, opens the logger, binds the service's endpoint
 * (`private/NAME`, `public/NAME`, or TCP for inet services), runs the
 * handler per connection, and stops cleanly on SIGTERM/SIGINT.
 *
 * A daemon knows nothing of how it is hosted: everything arrives in the
 * {@link ServiceContext}.
 */
import { type Config, loadConfig } from "../config/mod.ts";
import { type IpcConn, ipcListen, type IpcServer } from "../ipc/mod.ts";
import { fileSink, Logger, type LogSink, stderrSink } from "../log/mod.ts";
import { QueueDir } from "../queue/mod.ts";
import { type DaemonArgs, parseDaemonArgs } from "./args.ts";
import { endpointText, inetEndpoints } from "./endpoints.ts";

/** Longest a draining daemon (after a reload) waits for its sessions. */
const DRAIN_MS = 600_000;

/** What a daemon gets from its host. */
export interface ServiceContext {
  config: Config;
  log: Logger;
  queue: QueueDir;
  args: DaemonArgs;
  /** Aborted when the daemon is asked to stop. */
  signal: AbortSignal;
}

/** A daemon definition. */
export interface ServiceDefinition {
  /** Program name for logs, e.g. "smtpd". */
  program: string;
  /** Called once before listening; may start background loops. */
  init?: (ctx: ServiceContext) => Promise<void> | void;
  /** Per-connection handler for unix services. */
  onIpc?: (conn: IpcConn, ctx: ServiceContext) => Promise<void>;
  /** Per-connection handler for inet services. */
  onInet?: (conn: Deno.TcpConn, ctx: ServiceContext) => Promise<void>;
  /** Called at stop, before exit. */
  stop?: (ctx: ServiceContext) => Promise<void> | void;
}

/** Builds the logger for a daemon or command from its config. */
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

/** Runs a daemon until it is told to stop. Never returns normally. */
export async function runService(def: ServiceDefinition): Promise<never> {
  let args: DaemonArgs;
  let config: Config;
  try {
    args = parseDaemonArgs(Deno.args);
    config = await loadConfig(args.configDir, { overrides: args.overrides });
  } catch (e) {
    console.error(`${def.program}: fatal: ${(e as Error).message}`);
    Deno.exit(1);
  }
  const log = makeLogger(config, def.program, { stderr: args.stderrLog });
  const abort = new AbortController();
  const ctx: ServiceContext = {
    config,
    log,
    queue: new QueueDir(config.str("queue_directory")),
    args,
    signal: abort.signal,
  };
  const inflight = new Set<Promise<void>>();
  const track = (p: Promise<void>) => {
    inflight.add(p);
    p.finally(() => inflight.delete(p));
  };
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
        closers.push(() => listener.close());
        (async () => {
          try {
            for await (const conn of listener) {
              track(
                def.onInet!(conn, ctx).catch((e) => log.warn(`${endpointText(ep)}: ${e}`)).finally(
                  () => {
                    try {
                      conn.close();
                    } catch {
                      // closed by handler
                    }
                  },
                ),
              );
            }
          } catch {
            // listener closed
          }
        })();
      }
    } else if (def.onIpc) {
      const path = !args.publicService
        ? ctx.queue.privateSocket(args.service)
        : ctx.queue.publicSocket(args.service);
      const server: IpcServer = ipcListen(
        path,
        (conn) => {
          const p = def.onIpc!(conn, ctx);
          track(p.catch(() => {}));
          return p;
        },
        { onError: (e) => log.warn(`${args.service}: ${e.message}`) },
      );
      unixClosers.push(() => server.close());
    }
  } catch (e) {
    log.fatal(`${(e as Error).message}`);
    Deno.exit(1);
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
    Deno.exit(0);
  };
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, () => stop());
  Deno.addSignalListener("SIGUSR2", () => stop(DRAIN_MS, true));
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
