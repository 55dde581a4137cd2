/**
 * A daemon's side of worker hosting (hosting.ts): when master hosts a
 * daemon as a Deno Worker in a worker host (daemons/master/host.ts), the
 * daemon's arguments and configuration come in the first message instead
 * of the command line and stdin, master's signals come as messages
 * (signals are process-wide: the host's SIGTERM is not one daemon's), and
 * the daemon says how it exits before it does, since a Worker that exits
 * tells its host nothing.
 *
 * @module
 */

/** What the host sends a daemon Worker. */
export type ToWorker =
  | { op: "start"; args: string[]; handoff: unknown }
  | { op: "signal"; signal: WorkerSignal };

/** What a daemon Worker sends its host. */
export type FromWorker =
  /** It is about to exit with this status. */
  | { op: "exit"; code: number }
  /** Output for whoever started it (the audit probe's results). */
  | { op: "output"; text: string };

/** The signals master sends a daemon: stop, stop at once, drain (reload). */
export type WorkerSignal = "SIGTERM" | "SIGINT" | "SIGUSR2";

interface WorkerScope {
  postMessage(m: FromWorker): void;
  addEventListener(type: "message", f: (e: MessageEvent<ToWorker>) => void): void;
}

/** True when this code runs in a Worker, not as a process's main module. */
export function inWorker(): boolean {
  const g = globalThis as { WorkerGlobalScope?: abstract new () => unknown };
  return typeof g.WorkerGlobalScope === "function" && globalThis instanceof g.WorkerGlobalScope;
}

function scope(): WorkerScope {
  return globalThis as unknown as WorkerScope;
}

let signalHandler: ((s: WorkerSignal) => void) | null = null;
let started: Promise<{ args: string[]; handoff: unknown }> | null = null;

/**
 * The daemon's arguments and configuration, from the host's first message.
 * Later messages are signals, passed to {@link onWorkerSignal}'s handler.
 */
export function workerStart(): Promise<{ args: string[]; handoff: unknown }> {
  started ??= new Promise((resolve) => {
    scope().addEventListener("message", (e) => {
      const m = e.data;
      if (m.op === "start") resolve({ args: m.args, handoff: m.handoff });
      else if (m.op === "signal") signalHandler?.(m.signal);
    });
  });
  return started;
}

/** Handles master's signals, as Deno.addSignalListener would in a process. */
export function onWorkerSignal(f: (s: WorkerSignal) => void): void {
  signalHandler = f;
}

/** Sends output to whoever started this Worker (the audit's probe results). */
export function workerOutput(text: string): void {
  scope().postMessage({ op: "output", text });
}

/** Ends this Worker with an exit status its host reports to master. */
export function exitWorker(code: number): never {
  scope().postMessage({ op: "exit", code });
  // Deno.exit in a Worker ends that Worker only; the message above is queued first.
  Deno.exit(code);
}
