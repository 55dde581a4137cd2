/**
 * Pickup: moves locally submitted mail from `maildrop/` to cleanup, like
 * Postfix pickup(8). sendmail, run by any local user, leaves each message
 * there as a complete queue file (see commands/sendmail.ts and, for the
 * folder's modes and what pickup trusts, maildrop.ts); pickup scans the
 * folder once a second and whenever it is woken on its socket, submits
 * each file with {@link CleanupSession}, and removes the file (then
 * fsyncs the folder) only after cleanup answers that the message is
 * durably queued. A crash in between means the message is submitted
 * twice, never lost.
 *
 * The files come from potentially hostile users. The submitter is the
 * file's owner as the kernel reports it, logged as Postfix does
 * (`QUEUEID: uid=1000 from=<joe>`); a uid written inside the file is
 * ignored. Without sendmail -f the sender is the login name of that uid in
 * /etc/passwd (the name sendmail wrote is used only for a uid not listed
 * there, or when pickup may not read the file). The arrival time is the
 * file's mtime, clamped to now when it lies in the future. Entries that
 * are not regular files with one link (symlinks, hard links, FIFOs,
 * sockets, directories) are removed unopened with a warning naming their
 * owner's uid; a file replaced between lstat and open is left for the
 * next scan. Names starting with "." are sendmail's temporary files and
 * are skipped.
 *
 * A regular file that is not a valid maildrop file, or larger than
 * message_size_limit allows, is renamed to `.corrupt.NAME` inside
 * maildrop/ (pickup may not write `corrupt/`) with a warning; it is never
 * deleted. When cleanup cannot be reached the scan stops and the next poll
 * tries again; when cleanup rejects a message, or a file cannot be opened
 * (EACCES, a lease), the file stays and is retried with a growing delay
 * (10 s doubling to 1 h). Warnings name a maildrop file by its queue id
 * part only: its random part is what keeps other users from reading it.
 *
 * On `public/pickup` any message is a wake-up; `{sync: true}` first
 * fsyncs maildrop/ and answers `{ok: true, synced: true}`, which is how
 * sendmail makes its directory entry durable when it may not open the
 * folder itself.
 *
 * Parameters: queue_directory (where maildrop/ and private/cleanup are),
 * message_size_limit (10240000), content_filter (empty; the message's
 * content filter, for qmgr). authorized_submit_users is not read:
 * every local user may submit, as with its default static:anyone.
 */
import { quoteAddress } from "../../lib/address/mod.ts";
import { type CleanupEnvelope, CleanupSession } from "../../lib/cleanup/client.ts";
import { type IpcConn, IpcError } from "../../lib/ipc/mod.ts";
import { PasswdFile } from "../../lib/passwd/mod.ts";
import { DirSyncer, type Envelope, QueueFormatError, type Recipient } from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";
import { logName, type MaildropAttrs, maxMaildropBytes } from "./maildrop.ts";
import type { MaildropFile, MaildropOpen } from "./maildrop_file.ts";

/**
 * maildrop_file.ts, loaded when the first file turns up: it needs node:fs,
 * which an idle pickup need not pay for.
 */
let maildropFile: Promise<typeof import("./maildrop_file.ts")> | null = null;

export type { MaildropAttrs };

/** Options for {@link Pickup}. */
export interface PickupOptions {
  /** Cleanup's socket. @default ctx.peer("cleanup") */
  cleanupSocket?: string;
  /** Clock in ms. @default Date.now */
  now?: () => number;
  /** Timeout for each exchange with cleanup, ms. @default 300_000 */
  timeoutMs?: number;
  /** Interval between scans, ms. @default 1000 */
  pollMs?: number;
  /** Login name of a uid, or null if unknown. @default a lookup in /etc/passwd */
  loginName?: (uid: number) => string | null;
}

/** What one scan did, by maildrop file name. */
export interface ScanResult {
  submitted: string[];
  corrupt: string[];
  /** Not regular files, or hard links: removed without being opened. */
  removed: string[];
  /** Files kept because cleanup rejected them, they could not be read, or they changed. */
  kept: string[];
  /** True if the scan stopped because cleanup could not be reached. */
  unreachable: boolean;
}

type FileOutcome = "submitted" | "corrupt" | "removed" | "kept" | "gone" | "unreachable";

const RETRY_MIN_MS = 10_000;
const RETRY_MAX_MS = 3_600_000;
/** Postfix's allowance for clocks of clients that mount the maildrop. */
const FUTURE_MS = 2 * 3_600_000;

/** One maildrop scanner. Scans never overlap; wake-ups during a scan cause one more. */
export class Pickup {
  readonly #ctx: ServiceContext;
  readonly #maildrop: string;
  readonly #socket: string;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  readonly #loginName: (uid: number) => string | null;
  readonly #syncer: DirSyncer;
  /** Per-file retry state after cleanup rejected it or it could not be handled. */
  readonly #retry = new Map<string, { failures: number; next: number }>();
  #scanning: Promise<void> | null = null;
  #again = false;
  #cleanupDown = false;

  constructor(ctx: ServiceContext, opts: PickupOptions = {}) {
    this.#ctx = ctx;
    this.#maildrop = ctx.queue.dir("maildrop");
    this.#socket = opts.cleanupSocket ?? ctx.peer("cleanup");
    this.#now = opts.now ?? Date.now;
    this.#timeoutMs = opts.timeoutMs ?? 300_000;
    this.#pollMs = opts.pollMs ?? 1000;
    this.#loginName = opts.loginName ?? passwdLoginName(ctx);
    this.#syncer = new DirSyncer(this.#maildrop);
  }

  /** Polls (every second by default) until `ctx.signal` aborts, starting now. */
  start(): void {
    const timer = setInterval(() => this.wake(), this.#pollMs);
    this.#ctx.signal.addEventListener("abort", () => clearInterval(timer), { once: true });
    this.wake();
  }

  /** Asks for a scan; resolves when a scan that started after this call has finished. */
  wake(): Promise<void> {
    if (this.#ctx.signal.aborted) return Promise.resolve();
    if (this.#scanning) {
      this.#again = true;
      return this.#scanning;
    }
    this.#scanning = (async () => {
      do {
        this.#again = false;
        try {
          await this.scan();
        } catch (e) {
          this.#ctx.log.warn(`maildrop scan: ${(e as Error).message}`);
        }
      } while (this.#again && !this.#ctx.signal.aborted);
    })().finally(() => (this.#scanning = null));
    return this.#scanning;
  }

  /** Makes every entry created in maildrop/ so far durable (fsync of the folder). */
  syncMaildrop(): Promise<void> {
    return this.#syncer.sync();
  }

  /** Handles every maildrop entry once, oldest name first. */
  async scan(): Promise<ScanResult> {
    const result: ScanResult = {
      submitted: [],
      corrupt: [],
      removed: [],
      kept: [],
      unreachable: false,
    };
    const names: string[] = [];
    for await (const e of Deno.readDir(this.#maildrop)) {
      if (!e.name.startsWith(".")) names.push(e.name);
    }
    names.sort();
    const now = this.#now();
    for (const name of names) {
      if (this.#ctx.signal.aborted) break;
      const retry = this.#retry.get(name);
      if (retry && retry.next > now) continue;
      const outcome = await this.#pickupFile(name);
      if (outcome === "unreachable") {
        result.unreachable = true;
        break;
      }
      if (outcome !== "gone") result[outcome].push(name);
    }
    const present = new Set(names);
    for (const name of this.#retry.keys()) if (!present.has(name)) this.#retry.delete(name);
    return result;
  }

  async #pickupFile(name: string): Promise<FileOutcome> {
    const path = `${this.#maildrop}/${name}`;
    const shown = `maildrop/${logName(name)}`;
    let opened: MaildropOpen;
    let uid = -1;
    try {
      const { lstatEntry, openMaildropFile } = await (maildropFile ??= import(
        "./maildrop_file.ts"
      ));
      const lst = lstatEntry(path);
      if (!lst) return "gone";
      uid = Number(lst.uid);
      opened = openMaildropFile(path, lst, {
        maxBytes: maxMaildropBytes(this.#ctx.config.size("message_size_limit")),
      });
    } catch (e) {
      this.#ctx.log.warn(`${shown}: uid=${uid}: open: ${(e as Error).message}`);
      this.#backoff(name);
      return "kept";
    }
    switch (opened.status) {
      case "gone":
        return "gone";
      case "changed":
        this.#ctx.log.warn(`${shown}: uid=${opened.uid}: replaced while being opened; skipped`);
        return "kept";
      case "unsafe":
        return await this.#removeUnsafe(name, opened.uid, opened.why);
      case "corrupt":
        return await this.#quarantine(name, opened.uid, opened.why);
    }
    const file = opened.file;
    try {
      return await this.#submit(name, file);
    } finally {
      file.close();
    }
  }

  async #submit(name: string, file: MaildropFile): Promise<FileOutcome> {
    const shown = `maildrop/${logName(name)}`;
    const env = file.envelope;
    const attrs = (env.attrs ?? {}) as MaildropAttrs;
    let sender = env.sender;
    if (attrs.defaultSender === true) sender = this.#loginName(file.uid) ?? sender;
    let arrival = file.mtimeMs;
    const now = this.#now();
    if (arrival > now + FUTURE_MS) {
      this.#ctx.log.warn(
        `${shown}: uid=${file.uid}: message dated ${Math.round((arrival - now) / 1000)} ` +
          "seconds into the future",
      );
      arrival = now;
    }
    const limit = this.#ctx.config.size("message_size_limit");
    let session: CleanupSession | null = null;
    try {
      session = await CleanupSession.open(this.#socket, { timeoutMs: this.#timeoutMs });
      if (this.#cleanupDown) {
        this.#cleanupDown = false;
        this.#ctx.log.info("cleanup service is reachable again");
      }
      this.#ctx.log.info(`${session.queueId}: uid=${file.uid} from=<${quoteAddress(sender)}>`);
      const cf = this.#ctx.config.str("content_filter");
      session.envelope({
        ...cleanupEnvelope(env, file.head.recipients.filter((r) => !r.done), { sender, arrival }),
        ...(cf ? { actions: { filter: cf } } : {}), // as Postfix's pickup sends content_filter
      });
      let size = 0;
      for await (const chunk of file.content()) {
        size += chunk.length;
        if (limit > 0 && size > limit) {
          throw new QueueFormatError(`message larger than message_size_limit (${limit} bytes)`);
        }
        await session.write(chunk);
      }
      const s = session;
      session = null;
      const res = await s.finish();
      if (res.status !== "ok") {
        this.#ctx.log.warn(
          `${shown}: uid=${file.uid}: cleanup rejected the message: ` +
            `${res.code} ${res.dsn} ${res.text}; keeping the file`,
        );
        this.#backoff(name);
        return "kept";
      }
    } catch (e) {
      session?.abort();
      if (e instanceof IpcError) {
        if (!this.#cleanupDown) {
          this.#cleanupDown = true;
          this.#ctx.log.warn(`${shown}: cleanup service unavailable: ${e.message}`);
        }
        return "unreachable";
      }
      if (e instanceof QueueFormatError) return await this.#quarantine(name, file.uid, e.message);
      this.#ctx.log.warn(`${shown}: uid=${file.uid}: ${(e as Error).message}`);
      this.#backoff(name);
      return "kept";
    }
    this.#retry.delete(name);
    try {
      await Deno.remove(`${this.#maildrop}/${name}`);
      await this.#syncer.sync();
    } catch (e) {
      // The message is queued; a file left behind is submitted again (at least once).
      this.#ctx.log.warn(`${shown}: remove: ${(e as Error).message}`);
    }
    return "submitted";
  }

  /** Removes an entry that must not be opened (the name only: a link's target is untouched). */
  async #removeUnsafe(name: string, uid: number, why: string): Promise<FileOutcome> {
    const shown = `maildrop/${logName(name)}`;
    try {
      await Deno.remove(`${this.#maildrop}/${name}`);
      this.#ctx.log.warn(`${shown}: uid=${uid}: ${why}, not a maildrop file; removed`);
      return "removed";
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return "gone";
      this.#ctx.log.warn(
        `${shown}: uid=${uid}: ${why}, not a maildrop file; remove failed: ` +
          (e as Error).message,
      );
      this.#backoff(name);
      return "kept";
    }
  }

  async #quarantine(name: string, uid: number, why: string): Promise<FileOutcome> {
    const shown = logName(name);
    const to = `.corrupt.${name}`;
    try {
      await Deno.rename(`${this.#maildrop}/${name}`, `${this.#maildrop}/${to}`);
      await this.#syncer.sync();
      this.#ctx.log.warn(
        `maildrop/${shown}: uid=${uid}: corrupt maildrop file (${why}); renamed to .corrupt.${shown}`,
      );
    } catch (e) {
      this.#ctx.log.warn(
        `maildrop/${shown}: uid=${uid}: corrupt maildrop file (${why}); rename failed: ` +
          (e as Error).message,
      );
      this.#backoff(name);
    }
    return "corrupt";
  }

  #backoff(name: string): void {
    const prev = this.#retry.get(name)?.failures ?? 0;
    const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** prev);
    this.#retry.set(name, { failures: prev + 1, next: this.#now() + delay });
  }
}

/**
 * What pickup tells cleanup about a maildrop file: its recipients and DSN
 * attributes, with the sender and arrival time pickup decided on.
 */
export function cleanupEnvelope(
  env: Envelope,
  recipients: Recipient[],
  decided: { sender: string; arrival: number },
): CleanupEnvelope {
  const attrs = (env.attrs ?? {}) as MaildropAttrs;
  const out: CleanupEnvelope = {
    sender: decided.sender,
    recipients: recipients.map((r) => {
      const x: Recipient = { address: r.address };
      if (r.orcpt !== undefined) x.orcpt = r.orcpt;
      if (r.notify !== undefined) x.notify = r.notify;
      return x;
    }),
    attrs: { origin: "pickup", protocol: "local" },
    extractRecipients: attrs.extract === true,
    arrival: decided.arrival,
  };
  if (attrs.extract === true && Array.isArray(attrs.extractNotify)) {
    out.extractNotify = attrs.extractNotify;
  }
  if (attrs.envid !== undefined) out.attrs!.envid = attrs.envid;
  if (attrs.verify === true) out.attrs!.verify = true;
  if (attrs.ret !== undefined) out.attrs!.ret = attrs.ret;
  if (attrs.fullName !== undefined) {
    // Not in CleanupEnvelope's type yet; cleanup uses it for a missing From: header.
    (out.attrs as MaildropAttrs).fullName = attrs.fullName;
  }
  return out;
}

/**
 * Serves one connection on public/pickup: any message is a wake-up;
 * `{sync: true}` fsyncs maildrop/ first and says so in the answer.
 */
export async function serveWakeup(conn: IpcConn, pickup: Pickup): Promise<void> {
  const msg = await conn.recvMsg<{ sync?: unknown }>(10_000);
  if (msg.sync === true) {
    try {
      await pickup.syncMaildrop();
    } catch (e) {
      pickup.wake();
      await conn.send({ ok: false, error: `fsync maildrop: ${(e as Error).message}` });
      return;
    }
    pickup.wake();
    await conn.send({ ok: true, synced: true });
    return;
  }
  pickup.wake();
  await conn.send({ ok: true });
}

/** Login names from /etc/passwd; one warning while the file cannot be read. */
function passwdLoginName(ctx: ServiceContext): (uid: number) => string | null {
  const passwd = new PasswdFile();
  let warned = false;
  return (uid) => {
    const e = passwd.byUid(uid);
    if (passwd.error && !warned) {
      warned = true;
      ctx.log.warn(
        `cannot read ${passwd.path} (${passwd.error.message}); ` +
          "the default sender is the login name that sendmail wrote",
      );
    } else if (!passwd.error) warned = false;
    return e?.name ?? null;
  };
}

/** The opened file type, for tests. */
export type { MaildropFile };
