/**
 * The worker host (lib/service/hosting.ts): a process master starts, as the
 * mail owner, to run daemons as Deno Workers, each with the permission
 * object master computed for it from the same grants as a process's flags.
 *
 * master writes commands on stdin (start a Worker, pass it a signal) and
 * reads events on stdout (a Worker ended, a Worker's output); the daemons
 * log to stderr as they do in a process. The host stops its Workers and
 * exits when its stdin closes (master is done with it, or gone), on
 * SIGTERM/SIGINT, or when master goes away.
 *
 * A Worker that throws is ended and reported as exit status 1; one that
 * exits says its status first (lib/service/worker.ts), since an ended
 * Worker tells its host nothing.
 *
 * @module
 */
import {
  type HostCommand,
  HOSTED_SCRIPT,
  type HostEvent,
  lineSplitter,
} from "../../lib/service/hosting.ts";
import type { FromWorker, ToWorker } from "../../lib/service/worker.ts";

/** How long Workers get to stop when the host is told to exit. */
const STOP_GRACE_MS = 5000;

const workers = new Map<number, Worker>();
const encoder = new TextEncoder();
let exiting = false;
let allEnded: (() => void) | null = null;

function emit(ev: HostEvent): void {
  try {
    Deno.stdout.writeSync(encoder.encode(JSON.stringify(ev) + "\n"));
  } catch {
    // master is gone: the Workers stop when it is noticed
  }
}

function warn(text: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(`worker host: ${text}\n`));
  } catch {
    // nothing to tell
  }
}

/** Ends a Worker (if it still runs) and reports it. */
function ended(id: number, code: number, signal?: "SIGKILL"): void {
  const w = workers.get(id);
  if (!w) return;
  workers.delete(id);
  w.terminate();
  emit(signal ? { ev: "exit", id, code, signal } : { ev: "exit", id, code });
  if (workers.size === 0) allEnded?.();
}

function start(c: Extract<HostCommand, { op: "start" }>): void {
  if (!HOSTED_SCRIPT.test(c.script) || workers.has(c.id)) {
    warn(`refusing to start ${JSON.stringify(c.script)} as worker ${c.id}`);
    emit({ ev: "exit", id: c.id, code: 1 });
    return;
  }
  let w: Worker;
  try {
    w = new Worker(new URL(`../../${c.script}`, import.meta.url).href, {
      type: "module",
      name: c.name,
      // Deno's Worker permission option (--unstable-worker-options).
      deno: { permissions: c.permissions },
    } as WorkerOptions);
  } catch (e) {
    warn(`cannot start ${c.name}: ${(e as Error).message}`);
    emit({ ev: "exit", id: c.id, code: 1 });
    return;
  }
  workers.set(c.id, w);
  w.onmessage = (e: MessageEvent<FromWorker>) => {
    const m = e.data;
    if (m.op === "exit") ended(c.id, m.code);
    else if (m.op === "output") emit({ ev: "output", id: c.id, text: m.text });
  };
  // An uncaught error ends the Worker, not the host (Deno has printed it on stderr).
  w.onerror = (e) => {
    e.preventDefault();
    ended(c.id, 1);
  };
  w.onmessageerror = () => ended(c.id, 1);
  w.postMessage({ op: "start", args: c.args, handoff: c.handoff } satisfies ToWorker);
}

function signal(c: Extract<HostCommand, { op: "signal" }>): void {
  const w = workers.get(c.id);
  if (!w) return;
  if (c.signal === "SIGKILL") ended(c.id, 137, "SIGKILL");
  else w.postMessage({ op: "signal", signal: c.signal } satisfies ToWorker);
}

/** Tells every Worker to stop, waits for them a little, and exits. */
async function exitHost(): Promise<never> {
  if (!exiting) {
    exiting = true;
    const done = new Promise<void>((r) => {
      allEnded = r;
      if (workers.size === 0) r();
    });
    for (const w of workers.values()) {
      w.postMessage({ op: "signal", signal: "SIGTERM" } satisfies ToWorker);
    }
    await Promise.race([done, new Promise((r) => setTimeout(r, STOP_GRACE_MS))]);
    for (const id of [...workers.keys()]) ended(id, 137, "SIGKILL");
  }
  Deno.exit(0);
}

async function main(): Promise<void> {
  // `-c CONFIG_DIR` names the instance for ps; the configuration comes from master.
  if (Deno.args.length !== 2 || Deno.args[0] !== "-c") {
    warn("usage: host.ts -c CONFIG_DIR (started by master, commands on stdin)");
    Deno.exit(1);
  }
  for (const sig of ["SIGTERM", "SIGINT"] as const) Deno.addSignalListener(sig, exitHost);
  // As a daemon process does: never outlive master, even one killed with SIGKILL.
  const parent = Deno.ppid;
  setInterval(() => {
    if (Deno.ppid !== parent) void exitHost();
  }, 1000);
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).pipeThrough(
    lineSplitter(),
  );
  for await (const line of lines) {
    let c: HostCommand;
    try {
      c = JSON.parse(line) as HostCommand;
    } catch {
      warn("ignoring a line that is not a command");
      continue;
    }
    if (c.op === "start") start(c);
    else if (c.op === "signal") signal(c);
  }
  await exitHost();
}

if (import.meta.main) await main();
