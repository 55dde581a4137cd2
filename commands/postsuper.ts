/**
 * postsuper: delete, hold, release and requeue queued mail, like Postfix
 * postsuper(1).
 *
 *     postsuper [-psSv] [-c DIR] [-d ID] [-e ID] [-f ID] [-h ID] [-H ID]
 *               [-r ID] [QUEUE...]
 *
 * Each of -d (delete), -h (put on hold), -H (release from hold) and -r
 * (requeue) takes a queue id, `ALL` (upper case, as a safety measure) for
 * every message, or `-` to read queue ids from standard input, one a line
 * (the first word of each line, so `mailq`-style ids with `*`/`!` must be
 * cleaned first, as with Postfix). Options repeat. The QUEUE arguments name
 * the queues searched (maildrop incoming active deferred hold corrupt);
 * without them, as Postfix: -d and -r search hold, incoming, active and
 * deferred; -h incoming, active and deferred; -H hold.
 *
 * - -d removes the queue file and its deferral log `defer/ID`.
 * - -h renames the file into hold/, where qmgr never looks: held mail is
 *   neither delivered nor expired.
 * - -H renames it from hold/ into deferred/ with the modification time set
 *   to now (the mtime is the next attempt time), so qmgr retries it at its
 *   next deferred scan (`queue_run_delay`), as Postfix does.
 * - -r renames it into incoming/ and removes its deferral log, and qmgr is
 *   woken to take it at once. Postfix instead moves it to maildrop/ so that
 *   pickup and cleanup copy it to a new queue file, rewriting addresses
 *   again; here the queue file, its id and its addresses stay as they are.
 *
 * The operations run in Postfix's order: requeue, delete, hold, release;
 * each summary line follows on stderr in that order ("postsuper: Requeued: N
 * messages", "Deleted: ...", "Placed on hold: ...", "Released from hold:
 * ...", "1 message" in the singular), printed for each operation asked for,
 * also when N is 0. Each message acted on is logged to the maillog as
 * "ID: removed", "ID: placed on hold", "ID: released from hold" or "ID:
 * requeued". An id that is not in the searched queues is skipped silently;
 * one that is not a queue id gets "postsuper: warning: invalid mail queue
 * id: ID".
 *
 * Difference from Postfix: a message in active/ belongs to qmgr, which
 * holds its state in memory; Postfix's postsuper acts on it anyway. Here it
 * is left alone with "postsuper: warning: ID: message is being delivered
 * (active queue); try again later": qmgr moves it to deferred/ or removes it
 * when its delivery attempt ends. A message that qmgr takes into active/
 * while postsuper works on it is treated the same way.
 *
 * Renames are atomic, and every queue directory changed is fsync'ed before
 * exit. After -H or -r, qmgr is woken on `public/qmgr` (best effort: it also
 * scans on its own).
 *
 * -e sets a message's forced-expiry mark (the queue file's owner-execute
 * bit, as in Postfix; lib/queue FORCE_EXPIRE_MODE), also in active/, since
 * it moves nothing: qmgr returns the message to its sender at its next
 * activation (a held message stays held until released). -f does the same
 * and releases the message from hold. "ID: expired" is logged and counted
 * ("Force-expired: N messages") only for a message not marked before, as
 * Postfix counts.
 *
 * -p purges temporary files left by crashes and -s checks and repairs the
 * queue's structure (-S is the same as -s: Postwarden's queue file names
 * carry no inode number to check twice); see postsuper_check.ts for what
 * each does and reports. Without any operation, postsuper does both, as
 * Postfix's does. They run before the operations on ids, over the QUEUE
 * arguments (which may then also name `defer`, the deferral logs) or by
 * default over defer, maildrop, incoming, active, deferred and hold; when
 * -s renamed a file to its queue id, operations on ids are refused
 * ("CHECK YOUR QUEUE IDS AND RE-ISSUE THE COMMAND"), as in Postfix, since
 * an id given might now name another message. Warnings go to stderr and
 * the maillog.
 *
 * Exit status: 0 done (also when nothing matched); 1 for a bad command line
 * ("postsuper: fatal: usage: ..." or "invalid directory name: QUEUE"), an
 * unreadable main.cf or a missing queue directory.
 *
 * Parameters: queue_directory, maillog_file, syslog_name, myhostname.
 *
 * Run: deno task postsuper (see deno.json for permissions; --allow-net is
 * for the qmgr socket).
 *
 * @module
 */

import { configDirFrom, ConfigError, loadConfig } from "../lib/config/mod.ts";
import { ipcRequest } from "../lib/ipc/mod.ts";
import type { Logger } from "../lib/log/mod.ts";
import {
  FORCE_EXPIRE_MODE,
  forceExpired,
  isQueueId,
  QueueDir,
  type QueueName,
  QUEUES,
  syncDir,
} from "../lib/queue/mod.ts";
import { makeLogger } from "../lib/service/mod.ts";
import { CHECKED_QUEUES, type CheckedQueue, checkQueues } from "./postsuper_check.ts";
import { hostnameIfPermitted, queueDirectory } from "./postqueue.ts";
import { getopt, GetoptError } from "./_cli.ts";
import { printHelpIfAsked } from "./_help.ts";

/** The operations, in the order they run and report. */
export type Operation = "requeue" | "delete" | "hold" | "expire" | "release";
const ORDER: readonly Operation[] = ["requeue", "delete", "hold", "expire", "release"];
/** -f is -e that also releases the message from hold (Operation "expire" with `release`). */
const FLAGS: Record<string, Operation> = {
  r: "requeue",
  d: "delete",
  h: "hold",
  e: "expire",
  f: "expire",
  H: "release",
};

/** Queues searched when none are named on the command line (Postfix's defaults). */
export const DEFAULT_QUEUES: Record<Operation, readonly QueueName[]> = {
  requeue: ["hold", "incoming", "active", "deferred"],
  delete: ["hold", "incoming", "active", "deferred"],
  hold: ["incoming", "active", "deferred"],
  expire: ["hold", "incoming", "active", "deferred"],
  release: ["hold"],
};

const SUMMARY: Record<Operation, string> = {
  requeue: "Requeued",
  delete: "Deleted",
  hold: "Placed on hold",
  expire: "Force-expired",
  release: "Released from hold",
};

const LOGGED: Record<Operation, string> = {
  requeue: "requeued",
  delete: "removed",
  hold: "placed on hold",
  expire: "expired",
  release: "released from hold",
};

/** Postfix 3.7's usage line, word for word. */
const USAGE = "usage: postsuper [-c config_dir] [-d queue_id (delete)] " +
  "[-e queue_id (expire)] [-f queue_id (expire and/or un-hold)] [-h queue_id (hold)] " +
  "[-H queue_id (un-hold)] [-p (purge temporary files)] [-r queue_id (requeue)] " +
  "[-s (structure fix)] [-S (redundant structure fix)][-v (verbose)] [queue...]";

/** Where postsuper writes and what it reads from its environment. */
export interface PostsuperIo {
  /** One diagnostic or summary line (without newline), for stderr. */
  err(line: string): void;
  /** Standard input, for `-` ids. @default no input */
  stdin?: () => Promise<string>;
  /** Environment variables (MAIL_CONFIG). @default {} */
  env?: { MAIL_CONFIG?: string };
  /** The maillog. @default makeLogger(config, "postsuper", { stderr: false }) */
  log?: Logger;
  /** Clock for the release time. @default Date.now */
  now?: () => number;
}

/** A fatal error: printed as "postsuper: fatal: MESSAGE", exit status 1. */
class FatalError extends Error {
  override readonly name = "FatalError";
}

interface Options {
  c?: string;
  /** Queue ids (or "ALL", "-") per operation, in command-line order. */
  ids: Map<Operation, string[]>;
  /** The expire arguments given with -f (those messages also leave hold). */
  releasing: Set<string>;
  /** The QUEUE arguments (message queues, and defer for -p/-s). */
  named: CheckedQueue[];
  /** Whether QUEUE arguments were given. */
  anyNamed: boolean;
  /** Message queues among them, for the operations on ids. */
  queues: QueueName[];
  /** -p */
  purge: boolean;
  /** -s or -S */
  structure: boolean;
}

/** getopt(3) over "c:d:e:f:h:H:pr:sSv", then the queue names. */
function parseArgs(args: string[]): Options {
  const o: Options = {
    ids: new Map(),
    releasing: new Set(),
    named: [],
    anyNamed: false,
    queues: [],
    purge: false,
    structure: false,
  };
  let parsed;
  try {
    parsed = getopt(args, "c:d:e:f:h:H:pr:sSv");
  } catch (e) {
    if (e instanceof GetoptError) throw new FatalError(USAGE);
    throw e;
  }
  for (const { flag, value } of parsed.opts) {
    if (flag === "v") continue;
    if (flag === "c") o.c = value;
    else if (flag === "p") o.purge = true;
    else if (flag === "s" || flag === "S") o.structure = true;
    else {
      const op = FLAGS[flag];
      o.ids.set(op, [...(o.ids.get(op) ?? []), value!]);
      if (flag === "f") o.releasing.add(value!);
    }
  }
  o.anyNamed = parsed.operands.length > 0;
  for (const name of parsed.operands) {
    const known = [...QUEUES, ...CHECKED_QUEUES] as readonly string[];
    if (!known.includes(name)) throw new FatalError(`invalid directory name: ${name}`);
    if ((QUEUES as readonly string[]).includes(name)) o.queues.push(name as QueueName);
    if ((CHECKED_QUEUES as readonly string[]).includes(name)) o.named.push(name as CheckedQueue);
  }
  // No operation at all: purge and check, as Postfix's default.
  if (o.ids.size === 0 && !o.purge && !o.structure) o.purge = o.structure = true;
  return o;
}

/** Counts and side effects of one run. */
class Run {
  readonly counts = new Map<Operation, number>();
  readonly changedDirs = new Set<string>();
  wakeQmgr = false;

  constructor(
    readonly q: QueueDir,
    readonly io: PostsuperIo,
    readonly log: Logger,
  ) {}

  /** Where a message is among `queues`, or null. */
  async locate(id: string, queues: readonly QueueName[]): Promise<QueueName | null> {
    for (const queue of queues) {
      try {
        await Deno.lstat(this.q.path(queue, id));
        return queue;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return null;
  }

  /**
   * Applies `op` to one message; returns true if it was done. `release`:
   * an expired message in hold/ is also released (-f).
   */
  async apply(
    op: Operation,
    id: string,
    queues: readonly QueueName[],
    release = false,
  ): Promise<boolean> {
    // Two tries: qmgr may move the file between the look-up and the rename.
    for (let attempt = 0; attempt < 2; attempt++) {
      const from = await this.locate(id, queues);
      if (from === null) return false;
      if (op === "expire") {
        // The mode bit is no move: qmgr may hold the message in active/ meanwhile.
        let changed: boolean;
        try {
          changed = await this.#expire(id, from);
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) continue;
          throw e;
        }
        if (changed) {
          this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
          this.log.info(`${id}: ${LOGGED[op]}`);
        }
        if (release && from === "hold") await this.apply("release", id, ["hold"]);
        return changed;
      }
      if (from === "active") {
        this.io.err(
          `postsuper: warning: ${id}: message is being delivered (active queue); try again later`,
        );
        return false;
      }
      try {
        await this.#act(op, id, from);
      } catch (e) {
        if (e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
      this.log.info(`${id}: ${LOGGED[op]}`);
      return true;
    }
    return false;
  }

  async #act(op: Operation, id: string, from: QueueName): Promise<void> {
    const q = this.q;
    const moveTo = async (to: QueueName) => {
      if (to === from) return;
      await Deno.rename(q.path(from, id), q.path(to, id));
      this.changedDirs.add(q.dir(from)).add(q.dir(to));
    };
    switch (op) {
      case "delete":
        await Deno.remove(q.path(from, id));
        this.changedDirs.add(q.dir(from));
        await this.#removeDeferLog(id);
        return;
      case "hold":
        return await moveTo("hold");
      case "release": {
        // The mtime of a deferred file is its next attempt time: now. Set
        // before the rename, so qmgr never sees the file with a stale time.
        const now = new Date(this.io.now?.() ?? Date.now());
        await Deno.utime(q.path(from, id), now, now);
        await moveTo("deferred");
        this.wakeQmgr = true;
        return;
      }
      case "requeue":
        await moveTo("incoming");
        await this.#removeDeferLog(id);
        this.wakeQmgr = true;
        return;
    }
  }

  /** Sets the forced-expiry bit; false when it was set already. */
  async #expire(id: string, from: QueueName): Promise<boolean> {
    const path = this.q.path(from, id);
    const st = await Deno.lstat(path);
    if (!st.isFile) return false;
    if (forceExpired(st.mode)) return false;
    await Deno.chmod(path, (st.mode! & 0o7777) | FORCE_EXPIRE_MODE);
    if (from !== "hold") this.wakeQmgr = true;
    return true;
  }

  async #removeDeferLog(id: string): Promise<void> {
    try {
      await Deno.remove(this.q.deferLog(id));
      this.changedDirs.add(this.q.dir("defer"));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /** Every message id in `queues`, in queue id (arrival) order. */
  async all(queues: readonly QueueName[]): Promise<string[]> {
    const ids = new Set<string>();
    for (const queue of queues) {
      try {
        for await (const e of Deno.readDir(this.q.dir(queue))) {
          if (e.isFile && isQueueId(e.name)) ids.add(e.name);
        }
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return [...ids].sort();
  }
}

/** Run postsuper with `args`; returns the exit status. */
export async function postsuper(args: string[], io: PostsuperIo): Promise<number> {
  try {
    const o = parseArgs(args);
    const cfg = await loadConfig(configDirFrom({ c: o.c }, io.env ?? {}), {
      hostname: hostnameIfPermitted(),
    });
    const root = queueDirectory(cfg);
    try {
      await Deno.stat(root);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound ? "No such file or directory" : String(e);
      throw new FatalError(`chdir ${root}: ${why}`);
    }
    const run = new Run(
      new QueueDir(root),
      io,
      io.log ?? makeLogger(cfg, "postsuper", { stderr: false }),
    );
    if (o.purge || o.structure) {
      const queues = o.anyNamed ? o.named : CHECKED_QUEUES;
      const res = await checkQueues(run.q, queues, {
        purge: o.purge,
        structure: o.structure,
        now: io.now,
      });
      // To the maillog too, as Postfix to syslog; not twice when the maillog is stderr.
      const toLog = io.log !== undefined || cfg.str("maillog_file") !== "";
      for (const w of res.warnings) {
        io.err(`postsuper: warning: ${w}`);
        if (toLog) run.log.warn(w);
      }
      for (const d of res.changedDirs) run.changedDirs.add(d);
      if (res.renamed > 0) {
        const n = res.renamed;
        for (const d of run.changedDirs) await syncDir(d);
        run.changedDirs.clear();
        const line = `Renamed to match queue id: ${n} message${n === 1 ? "" : "s"}`;
        io.err(`postsuper: ${line}`);
        if (toLog) run.log.info(line);
        const warn = "QUEUE FILE NAMES WERE CHANGED TO MATCH THEIR QUEUE IDS";
        io.err(`postsuper: warning: ${warn}`);
        if (toLog) run.log.warn(warn);
        if (o.ids.size > 0) {
          io.err(`postsuper: error: ${warn}`);
          throw new FatalError("CHECK YOUR QUEUE IDS AND RE-ISSUE THE COMMAND");
        }
      }
    }
    // ALL makes the other ids of that option moot: ignored, silently as Postfix 3.7 (live run).
    for (const op of ["delete", "requeue", "hold", "release"] as const) {
      if (o.ids.get(op)?.includes("ALL")) o.ids.set(op, ["ALL"]);
    }
    let stdinIds: string[] | null = null;
    const readStdin = async () => {
      stdinIds ??= (await io.stdin?.() ?? "").split("\n")
        .map((l) => l.trim().split(/\s+/)[0])
        .filter((w) => w !== "");
      return stdinIds;
    };
    for (const op of ORDER) {
      const given = o.ids.get(op);
      if (!given) continue;
      run.counts.set(op, run.counts.get(op) ?? 0);
      const queues = o.anyNamed ? o.queues : DEFAULT_QUEUES[op];
      // active/ is searched even when not named, only to refuse its messages.
      const searched: QueueName[] = [...queues];
      if (!searched.includes("active") && op !== "release") searched.push("active");
      for (const arg of given) {
        // -f: the message also leaves hold (reported as a release).
        const release = op === "expire" && o.releasing.has(arg);
        if (release) run.counts.set("release", run.counts.get("release") ?? 0);
        if (arg === "ALL") {
          for (const id of await run.all(queues)) await run.apply(op, id, searched, release);
          continue;
        }
        for (const id of arg === "-" ? await readStdin() : [arg]) {
          if (!isQueueId(id)) {
            io.err(`postsuper: warning: invalid mail queue id: ${id}`);
            continue;
          }
          await run.apply(op, id, searched, release);
        }
      }
    }
    for (const dir of run.changedDirs) await syncDir(dir);
    if (run.wakeQmgr) {
      await ipcRequest(run.q.publicSocket("qmgr"), { op: "wakeup" }, { timeoutMs: 2000 })
        .catch(() => {});
    }
    for (const op of ORDER) {
      const n = run.counts.get(op);
      if (n === undefined) continue;
      io.err(`postsuper: ${SUMMARY[op]}: ${n} message${n === 1 ? "" : "s"}`);
    }
    return 0;
  } catch (e) {
    if (e instanceof FatalError || e instanceof ConfigError) {
      io.err(`postsuper: fatal: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** Entry point on the real standard streams. */
export async function main(args: string[]): Promise<number> {
  const enc = new TextEncoder();
  return await postsuper(args, {
    err: (line) => Deno.stderr.writeSync(enc.encode(line + "\n")),
    stdin: async () => await new Response(Deno.stdin.readable).text(),
    env: { MAIL_CONFIG: Deno.env.get("MAIL_CONFIG") },
  });
}

if (import.meta.main) {
  if (printHelpIfAsked("postsuper", Deno.args)) Deno.exit(0);
  Deno.exit(await main(Deno.args));
}
