/**
 * How master hosts a daemon (`postwarden_daemon_hosting`, in main.cf or per
 * service with `-o`):
 *
 * - `process` (the default): each daemon is its own `deno run` process with
 *   its own permission flags (lib/permissions), its own user and address
 *   space. The strongest isolation.
 * - `worker`: the daemon is a Deno Worker in a worker host, one process
 *   (daemons/master/host.ts) that master starts as the mail owner, and the
 *   Worker gets exactly the permissions the process would have had, as a
 *   Worker permission object (workerPermissions). Less memory: one Deno
 *   runtime for all the daemons it hosts.
 *
 * What worker hosting gives up, honestly: the Workers share an address
 * space and a user. Deno checks each Worker's permissions, but a flaw in
 * V8 or Deno that escapes one Worker's isolate gets the host's permissions,
 * which are the union of its Workers' (the host needs them to grant them),
 * instead of one daemon's. A daemon that crashes its isolate takes only its
 * Worker down (the host reports it and master restarts it); one that
 * crashes the process (out of memory, a fault in native code) takes every
 * Worker of the host down, and master restarts them all.
 *
 * Daemons that stay processes whatever the setting (hostingOf says why, and
 * master logs it): those master runs as root (local, pipe and virtual with
 * unprivileged = n; a Worker has its host's user), those that load npm code
 * (proxymap with a pgsql: or mysql: table, auth with a password file: the
 * host loads no npm code), and those granted an address range (the smtp
 * client's 0.0.0.0/0:25: Deno refuses a range in a Worker's permissions).
 *
 * A Worker's permissions must be a subset of its host's, fixed when the
 * host starts: master starts a new host at each reload (the old one exits
 * when its last daemon has drained), with the union of the grants of every
 * service the new configuration hosts, those started on demand included.
 *
 * The protocol between master and a host: JSON lines on the host's stdin
 * ({@link HostCommand}) and stdout ({@link HostEvent}); the daemons' log
 * lines go to the host's stderr, which master reads as it reads a daemon's.
 *
 * @module
 */
import type { Grants } from "../permissions/mod.ts";
import type { WorkerSignal } from "./worker.ts";

/** How one daemon runs. */
export type Hosting = "process" | "worker";

/** A Deno Worker permission object (`new Worker(url, { deno: { permissions } })`). */
export interface WorkerPermissions {
  read: string[] | false;
  write: string[] | false;
  net: string[] | false;
  run: string[] | false;
  sys: string[] | false;
  env: string[] | boolean;
  ffi: false;
  import: false;
}

/**
 * How master runs a service: what postwarden_daemon_hosting asks for (with
 * the service's -o settings in `param`), unless
 * the daemon cannot be a Worker (then `reason` says why it stays a process).
 */
export function hostingOf(
  opts: { param: (name: string) => string; grants: Grants; asRoot: boolean },
): { hosting: Hosting; reason?: string } {
  if (opts.param("postwarden_daemon_hosting").trim() !== "worker") return { hosting: "process" };
  if (opts.asRoot) {
    return {
      hosting: "process",
      reason: "it runs as root (unprivileged = n) and a Worker has its host's user",
    };
  }
  if (opts.grants.npm.length > 0) {
    return {
      hosting: "process",
      reason: `it loads npm code (${opts.grants.npm.join(", ")}) and the worker host loads none`,
    };
  }
  // Deno 2.9.6 refuses an address range ("0.0.0.0/0:25") in a Worker's
  // permissions as an escalation even when its host has the same range.
  const ranges = opts.grants.net.filter((n) => !n.startsWith("unix:") && n.includes("/"));
  if (ranges.length > 0) {
    return {
      hosting: "process",
      reason: `its network grant ${ranges.join(", ")} is an address range, which Deno ` +
        "cannot give a Worker",
    };
  }
  return { hosting: "worker" };
}

/** A daemon's grants as a Worker permission object: the same lists, nothing else. */
export function workerPermissions(g: Grants): WorkerPermissions {
  const list = (xs: string[]) => xs.length ? [...xs] : false as const;
  return {
    read: list(g.read),
    write: list(g.write),
    net: list(g.net),
    run: list(g.run),
    sys: list(g.sys),
    env: g.env.includes("*") ? true : list(g.env),
    ffi: false,
    import: false,
  };
}

/**
 * A host's grants: the union of its Workers' (a Worker cannot be given
 * more than its host has), and read access to the code tree, which the
 * host needs to load the daemons' modules and the Workers do not get.
 */
export function hostGrants(workers: Grants[], code: string): Grants {
  const union = (f: (g: Grants) => string[]) => [...new Set(workers.flatMap(f))];
  const env = union((g) => g.env);
  return {
    read: [...new Set([code, ...union((g) => g.read)])],
    write: union((g) => g.write),
    net: union((g) => g.net),
    run: union((g) => g.run),
    sys: union((g) => g.sys),
    env: env.includes("*") ? ["*"] : env,
    npm: [],
  };
}

/** Scripts a host runs as Workers: the daemons, and the audit's probe. */
export const HOSTED_SCRIPT = /^(daemons\/[a-z]+\/main|commands\/audit_probe)\.ts$/;

/** What master tells a host (one JSON line each). */
export type HostCommand =
  | {
    op: "start";
    /** master's handle for the Worker. */
    id: number;
    /** Script of the code tree ({@link HOSTED_SCRIPT}). */
    script: string;
    /** Worker name (the service), shown in Deno's error messages. */
    name: string;
    permissions: WorkerPermissions;
    /** The daemon's arguments (lib/service/args.ts), as a process gets them. */
    args: string[];
    /** Its configuration (lib/service DaemonHandoff), as a process reads it on stdin. */
    handoff: unknown;
  }
  | { op: "signal"; id: number; signal: WorkerSignal | "SIGKILL" };

/** What a host tells master (one JSON line each). */
export type HostEvent =
  /** The Worker has ended: its exit status, or the signal that ended it (SIGKILL: terminated). */
  | { ev: "exit"; id: number; code: number; signal?: "SIGKILL" }
  /** Output of the Worker (the audit probe's results). */
  | { ev: "output"; id: number; text: string };

/** A daemon master started: a process, or a Worker in a host. */
export interface Running {
  readonly pid: number;
  readonly status: Promise<Deno.CommandStatus>;
  kill(signal?: Deno.Signal): void;
}

interface Pending {
  settle: (s: Deno.CommandStatus) => void;
  onOutput?: (text: string) => void;
}

const encoder = new TextEncoder();

/**
 * master's side of a worker host: sends it commands, reads its events, and
 * gives each Worker a handle that behaves as a child process does (a pid,
 * an exit status, kill). The caller spawns the host process (its user,
 * environment and stderr are the caller's business) with stdin and stdout
 * piped.
 */
export class WorkerHost {
  readonly #proc: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #workers = new Map<number, Pending>();
  #next = 1;
  #retired = false;
  #closed = false;
  /** Resolves when the host process has exited (every Worker has then ended). */
  readonly exited: Promise<Deno.CommandStatus>;

  constructor(proc: Deno.ChildProcess) {
    this.#proc = proc;
    this.#writer = proc.stdin.getWriter();
    const events = this.#readEvents();
    this.exited = proc.status.then(async (st) => {
      await events;
      this.#closed = true;
      // Whatever did not report: ended with its host.
      for (const [id, p] of this.#workers) {
        this.#workers.delete(id);
        p.settle({ success: false, code: st.code || 1, signal: st.signal });
      }
      return st;
    });
  }

  get pid(): number {
    return this.#proc.pid;
  }

  /** The host process's exit (a WorkerHost is itself a {@link Running}). */
  get status(): Promise<Deno.CommandStatus> {
    return this.exited;
  }

  /** Signals the host process (SIGTERM: it stops its Workers and exits). */
  kill(signal: Deno.Signal = "SIGTERM"): void {
    this.#proc.kill(signal);
  }

  /** Workers running in this host. */
  get size(): number {
    return this.#workers.size;
  }

  /** Starts a Worker; its handle reports its exit as a process's status would. */
  start(
    w: Omit<Extract<HostCommand, { op: "start" }>, "op" | "id">,
    onOutput?: (text: string) => void,
  ): Running {
    if (this.#closed || this.#retired) throw new Error("worker host is closing");
    const id = this.#next++;
    const status = new Promise<Deno.CommandStatus>((settle) => {
      this.#workers.set(id, { settle, onOutput });
    });
    this.#send({ op: "start", id, ...w });
    return {
      pid: this.#proc.pid,
      status,
      kill: (signal: Deno.Signal = "SIGTERM") => {
        if (!this.#workers.has(id)) return;
        const sig = signal === "SIGKILL" || signal === "SIGUSR2" || signal === "SIGINT"
          ? signal
          : "SIGTERM";
        this.#send({ op: "signal", id, signal: sig });
      },
    };
  }

  /** Takes no more Workers, and closes once the last one has ended. */
  retire(): void {
    this.#retired = true;
    if (this.#workers.size === 0) this.close();
  }

  /** Closes the host's input: it stops its Workers and exits. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer.close().catch(() => {});
  }

  #send(c: HostCommand): void {
    if (this.#closed) return;
    this.#writer.write(encoder.encode(JSON.stringify(c) + "\n")).catch(() => {
      // The host has died; its exit settles every Worker.
    });
  }

  async #readEvents(): Promise<void> {
    const lines = this.#proc.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(lineSplitter());
    try {
      for await (const line of lines) {
        let ev: HostEvent;
        try {
          ev = JSON.parse(line) as HostEvent;
        } catch {
          continue; // not an event (a Worker printed to stdout)
        }
        const p = this.#workers.get(ev.id);
        if (!p) continue;
        if (ev.ev === "output") p.onOutput?.(ev.text);
        else if (ev.ev === "exit") {
          this.#workers.delete(ev.id);
          p.settle({
            success: ev.code === 0 && !ev.signal,
            code: ev.code,
            signal: ev.signal ?? null,
          });
          if (this.#retired && this.#workers.size === 0) this.close();
        }
      }
    } catch {
      // stdout closed with the process
    }
  }
}

/** Splits a text stream into lines. */
export function lineSplitter(): TransformStream<string, string> {
  let buf = "";
  return new TransformStream({
    transform(chunk, ctl) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        ctl.enqueue(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    },
    flush(ctl) {
      if (buf) ctl.enqueue(buf);
    },
  });
}
