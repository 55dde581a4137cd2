/**
 * Daemons started on demand, as Postfix's master starts its services:
 * cleanup, the delivery agents, bounce and anvil do not run until a client
 * needs them, and exit after max_idle seconds without one, so an idle
 * instance runs only master, qmgr, pickup and its listeners (smtpd: Deno
 * cannot hand a listening socket over, see below). The first message after
 * an idle spell waits for cleanup to start, as with Postfix.
 *
 * Deno cannot hand a listening socket to a child, so master cannot listen
 * on the daemons' behalf as Postfix's does. Instead a client that finds no
 * daemon behind a socket (lib/ipc ipcConnect: the path is missing or
 * refuses) asks master to start it, over master's control socket
 * `pid/master.sock`, and waits for the daemon to bind. Started as root,
 * master makes it root's with the mail owner's group, mode 0660, in root's
 * pid/ folder: daemons can connect, none can remove, replace or chmod it
 * (which Deno's write grant on the path would allow where the operating
 * system did not stop it), local users cannot connect. The worst a
 * compromised daemon can do with it is start a service that mail would
 * start anyway. Started as another user, everything is that user's and
 * only the sandboxes keep the daemons apart.
 *
 * A daemon that exits idle first closes its sockets (Deno unlinks the
 * paths), then finishes the connections it had accepted: a client either
 * reaches it or finds no socket and wakes a new one.
 *
 * @module
 */
import type { MasterService } from "../config/mod.ts";
import { ipcRequest } from "../ipc/mod.ts";
import { AGENTS } from "../permissions/peers.ts";

/**
 * Commands whose unix services start on demand and exit when idle:
 * cleanup, the delivery agents, bounce and anvil.
 */
const ON_DEMAND: ReadonlySet<string> = new Set([
  "cleanup",
  ...AGENTS,
  "bounce",
  "anvil",
  "mtasts",
]);

/** True when master starts this service only when a client asks for it. */
export function startsOnDemand(svc: Pick<MasterService, "type" | "command">): boolean {
  return svc.type === "unix" && ON_DEMAND.has(svc.command);
}

/** master's control socket in a queue directory. */
export function masterSocket(queueDir: string): string {
  return `${queueDir}/pid/master.sock`;
}

/** What a client asks master. */
export interface WakeRequest {
  op: "wake";
  /** The master.cf service name (unix). */
  service: string;
}

/** master's answer: the service runs or is starting; or why it will not. */
export type WakeReply = { status: "ok" } | { status: "error"; text: string };

/** How long master has to answer a wake request. */
const WAKE_TIMEOUT_MS = 10_000;

/**
 * Asks master to start `service`. Resolves once master has started it (it
 * may not have bound its socket yet); throws when master refuses or cannot
 * be reached.
 */
export async function wakeService(queueDir: string, service: string): Promise<void> {
  const reply = await ipcRequest<WakeReply>(
    masterSocket(queueDir),
    { op: "wake", service } satisfies WakeRequest,
    { timeoutMs: WAKE_TIMEOUT_MS },
  );
  if (reply.status !== "ok") {
    throw new Error(`master would not start ${service}: ${reply.text ?? "no reason given"}`);
  }
}
