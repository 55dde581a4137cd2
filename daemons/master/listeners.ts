/**
 * How many processes master starts for an inet service.
 *
 * Postfix's master forks one smtpd per connection, up to the service's
 * maxproc (default_process_limit, 100, for "-"). A Postwarden smtpd serves
 * any number of connections in one event loop, so maxproc cannot mean the
 * same thing: 100 Deno processes would cost gigabytes for no gain. Instead
 * several processes bind the same port with SO_REUSEPORT and the kernel
 * spreads new connections over them; a crash in one leaves the others
 * listening. The count:
 *
 *   maxproc "-"   1 (Postfix's default does not say how many event loops)
 *   maxproc N     N, at most max(2, CPUs): more event loops than CPUs gain nothing
 *   maxproc 0     max(2, CPUs) (Postfix: no limit)
 *
 * Why one by default: a second process costs more than it gains. On the
 * 2-core development machine (scripts/bench/cost.ts, 10,000 relayed
 * messages) smtpd used 620-660 CPU-ms per 1,000 messages as one process
 * and 885-990 as two: each process wakes for half the connections, so
 * fewer events share an event-loop turn, and each keeps its own heap,
 * JIT and timers (about 45 MiB RSS of fixed cost). smtpd is not the relay
 * path's only busy stage (cleanup and qmgr are one process each), so a
 * second event loop rarely adds throughput; where it does, maxproc N asks
 * for N.
 *
 * Other service types keep one process: unix services are single
 * listeners, and qmgr and pickup must never run twice.
 */
import type { MasterService } from "../../lib/config/mod.ts";

/** Processes per inet service when master.cf says "-". */
export const DEFAULT_LISTENERS = 1;

/** The floor of the cap on an explicit maxproc, whatever the CPU count. */
const MIN_CAP = 2;

/** The number of processes to run for a service, given the machine's CPU count. */
export function listenerProcesses(svc: MasterService, cpus: number): number {
  if (svc.type !== "inet") return 1;
  const most = Math.max(MIN_CAP, Math.floor(cpus) || 1);
  if (svc.raw?.maxproc === "-") return Math.min(DEFAULT_LISTENERS, most);
  if (svc.maxproc === 0) return most;
  return Math.max(1, Math.min(svc.maxproc, most));
}
