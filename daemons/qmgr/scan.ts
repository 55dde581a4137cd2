/**
 * The queue manager's queue scans: recovery at start (files a previous run
 * left in active/ go back to incoming/), the incoming/ scan (new mail, in
 * queue id order, i.e. arrival order) and the deferred/ scan (messages
 * whose next attempt time, the file's mtime, has come; every message on a
 * flush). Each hands ids to the activation callback while the active queue
 * has room; what does not fit is found again by a later scan. The hold
 * queue is never scanned: held mail waits for postsuper -H.
 *
 * Not here: what activation does (qmgr.ts), the scan timers (qmgr.ts).
 */
import { isQueueId, type QueueDir } from "../../lib/queue/mod.ts";

/** What the scans need from the queue manager. */
export interface ScanHost {
  queue: QueueDir;
  now(): number;
  warn(line: string): void;
  /** Whether the active queue takes another message (active and recipient limits). */
  hasRoom(): boolean;
  /** Moves a message to active/ and schedules it. */
  activate(id: string, from: "incoming" | "deferred"): Promise<void>;
}

/**
 * Moves every queue file in active/ back to incoming/ and returns their ids
 * (their deferral logs may exist). Runs before anything is scheduled.
 */
export async function recoverActive(queue: QueueDir): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const e of Deno.readDir(queue.dir("active"))) {
    if (!e.isFile || !isQueueId(e.name)) continue;
    await queue.move(e.name, "active", "incoming");
    ids.add(e.name);
  }
  return ids;
}

/** The incoming/ and deferred/ scans; one of each runs at a time. */
export class Scanner {
  #incomingBusy = false;
  #incomingAgain = false;
  #deferredBusy = false;
  #deferredAgain: "all" | "due" | null = null;
  /** When the deferred queue was last scanned (ms); 0 makes the next tick scan. */
  lastDeferredScan = 0;

  constructor(readonly host: ScanHost) {}

  /** Activates what incoming/ holds, oldest first; a scan asked for meanwhile runs after. */
  async scanIncoming(): Promise<void> {
    if (this.#incomingBusy) {
      this.#incomingAgain = true;
      return;
    }
    this.#incomingBusy = true;
    try {
      do {
        this.#incomingAgain = false;
        for (const id of await this.#ids("incoming")) {
          if (!this.host.hasRoom()) break;
          await this.host.activate(id, "incoming");
        }
      } while (this.#incomingAgain);
    } catch (e) {
      this.host.warn(`scan incoming: ${(e as Error).message}`);
    } finally {
      this.#incomingBusy = false;
    }
  }

  /**
   * Activates deferred messages whose time has come (or all, for a flush);
   * a scan asked for meanwhile runs after (a flush's "all" is kept).
   */
  async scanDeferred(all: boolean): Promise<void> {
    if (this.#deferredBusy) {
      this.#deferredAgain = all ? "all" : (this.#deferredAgain ?? "due");
      return;
    }
    this.#deferredBusy = true;
    const q = this.host.queue;
    try {
      let mode: "all" | "due" | null = all ? "all" : "due";
      while (mode) {
        this.#deferredAgain = null;
        this.lastDeferredScan = this.host.now();
        const due: string[] = [];
        for (const id of await this.#ids("deferred")) {
          if (mode === "due") {
            const st = await Deno.stat(q.path("deferred", id)).catch(() => null);
            if (!st || (st.mtime && st.mtime.getTime() > this.host.now())) continue;
          }
          due.push(id);
        }
        for (const id of due) {
          if (!this.host.hasRoom()) break;
          await this.host.activate(id, "deferred");
        }
        mode = this.#deferredAgain;
      }
    } catch (e) {
      this.host.warn(`scan deferred: ${(e as Error).message}`);
    } finally {
      this.#deferredBusy = false;
    }
  }

  async #ids(queue: "incoming" | "deferred"): Promise<string[]> {
    const ids: string[] = [];
    for await (const e of Deno.readDir(this.host.queue.dir(queue))) {
      if (e.isFile && isQueueId(e.name)) ids.push(e.name);
    }
    return ids.sort();
  }
}
