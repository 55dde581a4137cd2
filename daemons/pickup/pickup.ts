/**
 * Pickup: moves locally submitted mail from `maildrop/` to cleanup, like
 * Postfix pickup(8). sendmail writes each message there as a complete
 * queue file (see commands/sendmail.ts); pickup scans the folder once a
 * second and whenever it is woken on its socket, submits each file with
 * {@link CleanupSession}, and removes the file (then fsyncs the folder)
 * only after cleanup answers that the message is durably queued. A crash
 * in between means the message is submitted twice, never lost.
 *
 * Files whose names start with "." are sendmail's temporary files and are
 * skipped. A file that is not a valid queue file is renamed to
 * `.corrupt.NAME` inside maildrop/ (pickup may not write `corrupt/`) with
 * a warning; it is never deleted. When cleanup cannot be reached the scan
 * stops and the next poll tries again; when cleanup rejects a message the
 * file stays and is retried with a growing delay (10 s doubling to 1 h).
 *
 * Maildrop envelope attributes that sendmail sets, beyond the queue
 * format's own ({@link MaildropAttrs}): uid and user of the submitter,
 * `extract` (sendmail -t) and `fullName` (sendmail -F).
 *
 * Parameters: queue_directory (where maildrop/ and private/cleanup are).
 */
import { type CleanupEnvelope, CleanupSession } from "../../lib/cleanup/client.ts";
import { type IpcConn, IpcError } from "../../lib/ipc/mod.ts";
import {
  type Envelope,
  QueueFile,
  QueueFormatError,
  type Recipient,
  syncDir,
} from "../../lib/queue/mod.ts";
import type { ServiceContext } from "../../lib/service/mod.ts";

/** The envelope attributes of a maildrop file: the queue format's plus sendmail's. */
export type MaildropAttrs = NonNullable<Envelope["attrs"]> & {
  /** Submitter's uid, as sendmail saw it. */
  uid?: number;
  /** Submitter's login name. */
  user?: string;
  /** Take recipients from the message headers (sendmail -t). */
  extract?: boolean;
  /** Full name for the From: header (sendmail -F). */
  fullName?: string;
};

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
}

/** What one scan did. */
export interface ScanResult {
  submitted: string[];
  corrupt: string[];
  /** Files kept because cleanup rejected them or they could not be read. */
  kept: string[];
  /** True if the scan stopped because cleanup could not be reached. */
  unreachable: boolean;
}

type FileOutcome = "submitted" | "corrupt" | "kept" | "gone" | "unreachable";

const RETRY_MIN_MS = 10_000;
const RETRY_MAX_MS = 3_600_000;

/** One maildrop scanner. Scans never overlap; wake-ups during a scan cause one more. */
export class Pickup {
  readonly #ctx: ServiceContext;
  readonly #maildrop: string;
  readonly #socket: string;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #pollMs: number;
  /** Per-file retry state after cleanup rejected it. */
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

  /** Submits every complete maildrop file once, oldest name first. */
  async scan(): Promise<ScanResult> {
    const result: ScanResult = { submitted: [], corrupt: [], kept: [], unreachable: false };
    const names: string[] = [];
    for await (const e of Deno.readDir(this.#maildrop)) {
      if (e.isFile && !e.name.startsWith(".")) names.push(e.name);
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
    let qf: QueueFile;
    try {
      qf = await QueueFile.open(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return "gone";
      if (e instanceof QueueFormatError) return await this.#quarantine(name, e.message);
      this.#ctx.log.warn(`maildrop/${name}: ${(e as Error).message}`);
      this.#backoff(name);
      return "kept";
    }
    let session: CleanupSession | null = null;
    try {
      const env = qf.envelope;
      const attrs = (env.attrs ?? {}) as MaildropAttrs;
      const uid = await fileOwner(qf) ?? attrs.uid ?? 0;
      session = await CleanupSession.open(this.#socket, { timeoutMs: this.#timeoutMs });
      if (this.#cleanupDown) {
        this.#cleanupDown = false;
        this.#ctx.log.info("cleanup service is reachable again");
      }
      this.#ctx.log.info(`${session.queueId}: uid=${uid} from=<${env.sender}>`);
      session.envelope(cleanupEnvelope(env, qf.head.recipients.filter((r) => !r.done)));
      for await (const chunk of qf.content()) await session.write(chunk);
      const s = session;
      session = null;
      const res = await s.finish();
      if (res.status !== "ok") {
        this.#ctx.log.warn(
          `maildrop/${name}: cleanup rejected the message: ${res.code} ${res.dsn} ${res.text}; ` +
            "keeping the file",
        );
        this.#backoff(name);
        return "kept";
      }
    } catch (e) {
      session?.abort();
      if (e instanceof IpcError) {
        if (!this.#cleanupDown) {
          this.#cleanupDown = true;
          this.#ctx.log.warn(`maildrop/${name}: cleanup service unavailable: ${e.message}`);
        }
        return "unreachable";
      }
      if (e instanceof QueueFormatError) return await this.#quarantine(name, e.message);
      this.#ctx.log.warn(`maildrop/${name}: ${(e as Error).message}`);
      this.#backoff(name);
      return "kept";
    } finally {
      qf.close();
    }
    this.#retry.delete(name);
    try {
      await Deno.remove(path);
      await syncDir(this.#maildrop);
    } catch (e) {
      // The message is queued; a file left behind is submitted again (at least once).
      this.#ctx.log.warn(`maildrop/${name}: remove: ${(e as Error).message}`);
    }
    return "submitted";
  }

  async #quarantine(name: string, why: string): Promise<FileOutcome> {
    const to = `.corrupt.${name}`;
    try {
      await Deno.rename(`${this.#maildrop}/${name}`, `${this.#maildrop}/${to}`);
      await syncDir(this.#maildrop);
      this.#ctx.log.warn(`maildrop/${name}: corrupt maildrop file (${why}); renamed to ${to}`);
    } catch (e) {
      this.#ctx.log.warn(
        `maildrop/${name}: corrupt maildrop file (${why}); rename failed: ${(e as Error).message}`,
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

/** What pickup tells cleanup about a maildrop file. */
export function cleanupEnvelope(env: Envelope, recipients: Recipient[]): CleanupEnvelope {
  const attrs = (env.attrs ?? {}) as MaildropAttrs;
  const out: CleanupEnvelope = {
    sender: env.sender,
    recipients: recipients.map((r) => {
      const x: Recipient = { address: r.address };
      if (r.orcpt !== undefined) x.orcpt = r.orcpt;
      if (r.notify !== undefined) x.notify = r.notify;
      return x;
    }),
    attrs: { origin: "pickup", protocol: "local" },
    extractRecipients: attrs.extract === true,
    arrival: env.arrival,
  };
  if (attrs.envid !== undefined) out.attrs!.envid = attrs.envid;
  if (attrs.ret !== undefined) out.attrs!.ret = attrs.ret;
  if (attrs.fullName !== undefined) {
    // Not in CleanupEnvelope's type yet; cleanup uses it for a missing From: header.
    (out.attrs as MaildropAttrs).fullName = attrs.fullName;
  }
  return out;
}

/** Serves one connection on public/pickup: any message is a wake-up. */
export async function serveWakeup(conn: IpcConn, pickup: Pickup): Promise<void> {
  await conn.recvMsg(10_000);
  pickup.wake();
  await conn.send({ ok: true });
}

/** The uid owning the file (the submitter, as Postfix pickup reports), if known. */
async function fileOwner(qf: QueueFile): Promise<number | null> {
  try {
    return (await qf.file.stat()).uid;
  } catch {
    return null;
  }
}
