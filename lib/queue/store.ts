/**
 * Queue directory I/O: the folders under `queue_directory`, writing a queue
 * file durably, reading one back, marking recipients done in place, and
 * moving files between queues with atomic renames.
 *
 * Durability (DESIGN.md invariant 1): a file is written under a temporary
 * name and renamed to its queue id, and both the file (fdatasync) and the
 * directory (fsync) are synced before {@link QueueWriter.commit}
 * resolves. Directory fsyncs are shared by commits that arrive together
 * (group commit).
 */
import {
  checkTrailer,
  CONTENT_CHUNK,
  ContentDecoder,
  contentRecordHeader,
  decodeHead,
  encodeHead,
  encodeTrailer,
  type Envelope,
  QueueFormatError,
  type QueueHead,
  RCPT_DONE,
  type Recipient,
  TRAILER_SIZE,
} from "./format.ts";

/** The queue folders, Postfix names where Postfix has one. */
export const QUEUES = ["maildrop", "incoming", "active", "deferred", "hold", "corrupt"] as const;
export type QueueName = typeof QUEUES[number];
/** Non-queue folders under queue_directory. */
export const SUPPORT_DIRS = ["private", "public", "pid", "defer", "kv"] as const;

/** Paths of one queue directory, and moves between its queues. */
export class QueueDir {
  /** One syncer per destination folder, so moves that arrive together share an fsync. */
  readonly #syncers = new Map<string, DirSyncer>();

  /** @param syncFn fsyncs a folder; tests count syncs with it. @default syncDir */
  constructor(
    readonly root: string,
    readonly syncFn: (path: string) => Promise<void> = syncDir,
  ) {}

  /**
   * Moves a queue file from one queue to another: one atomic rename, then an
   * fsync of the destination folder (shared with moves that arrive
   * together), so the move survives a crash once this resolves. Rejects with
   * Deno.errors.NotFound when the file is not in `from` (another process
   * took it), and leaves it where it was on any other failure.
   *
   * `durable: false` skips the fsync, for a move whose loss in a crash
   * costs at most a repeated attempt (DESIGN.md invariant 2): qmgr taking a
   * message from incoming/ (a lost move leaves it there, to be taken again)
   * or putting it in deferred/ (a lost move leaves it in active/, which
   * recovery puts back in incoming/). Postfix fsyncs neither.
   */
  async move(
    id: string,
    from: QueueName,
    to: QueueName,
    opts: { durable?: boolean } = {},
  ): Promise<void> {
    // Synchronous: a rename on the thread pool costs more CPU than it blocks
    // (scripts/bench/fs_ops.ts).
    Deno.renameSync(this.path(from, id), this.path(to, id));
    if (opts.durable === false) return;
    let syncer = this.#syncers.get(to);
    if (!syncer) this.#syncers.set(to, syncer = new DirSyncer(this.dir(to), this.syncFn));
    await syncer.sync();
  }

  dir(q: QueueName | typeof SUPPORT_DIRS[number]): string {
    return `${this.root}/${q}`;
  }

  path(q: QueueName, id: string): string {
    return `${this.root}/${q}/${id}`;
  }

  /** Socket path of a private service. */
  privateSocket(service: string): string {
    return `${this.root}/private/${service}`;
  }

  /** Socket path of a public service. */
  publicSocket(service: string): string {
    return `${this.root}/public/${service}`;
  }

  /** Deferral log of a message (reasons for mailq and delay/expiry notices). */
  deferLog(id: string): string {
    return `${this.root}/defer/${id}`;
  }

  /** Creates every folder (mode 0700 except public and maildrop). */
  async create(): Promise<void> {
    await Deno.mkdir(this.root, { recursive: true });
    for (const d of [...QUEUES, ...SUPPORT_DIRS]) {
      await Deno.mkdir(this.dir(d), {
        recursive: true,
        mode: d === "public" || d === "maildrop" ? 0o730 : 0o700,
      });
    }
  }
}

/** Fsyncs a directory so that renames and creations in it are durable. */
export async function syncDir(path: string): Promise<void> {
  const d = await Deno.open(path, { read: true });
  try {
    await d.sync();
  } finally {
    d.close();
  }
}

/**
 * Coalesces directory fsyncs: callers that ask while one is pending share
 * the next one, so N messages committed together cost one directory sync.
 *
 * With `keepOpen` the directory is opened at the first sync and kept open
 * until {@link close}, as a daemon does for its own queue folder: a commit
 * then waits for the fsync alone, not for an open on the thread pool first
 * (and the fsync can start beside the file's fdatasync). Safe because queue
 * folders are created once and never replaced while daemons run; a failed
 * sync drops the handle and the next one opens the folder again.
 */
export class DirSyncer {
  #running: Promise<void> | null = null;
  #next: Promise<void> | null = null;
  readonly #syncDir: (path: string) => Promise<void>;
  #held: Promise<Deno.FsFile> | null = null;

  /** @param syncFn fsyncs the directory; tests count or hold syncs with it. @default syncDir */
  constructor(
    readonly path: string,
    syncFn: ((path: string) => Promise<void>) | { keepOpen: true } = syncDir,
  ) {
    this.#syncDir = typeof syncFn === "function" ? syncFn : (p) => this.#syncHeld(p);
  }

  sync(): Promise<void> {
    if (this.#next) return this.#next;
    if (!this.#running) {
      this.#running = this.#syncDir(this.path).finally(() => (this.#running = null));
      return this.#running;
    }
    // A sync is in flight but may have started before our rename: queue one more.
    const after = this.#running.catch(() => {}).then(() => {
      this.#next = null;
      this.#running = this.#syncDir(this.path).finally(() => (this.#running = null));
      return this.#running;
    });
    this.#next = after;
    return after;
  }

  async #syncHeld(path: string): Promise<void> {
    const held = this.#held ??= Deno.open(path, { read: true });
    let dir: Deno.FsFile;
    try {
      dir = await held;
    } catch (e) {
      if (this.#held === held) this.#held = null;
      throw e;
    }
    try {
      await dir.sync();
    } catch (e) {
      if (this.#held === held) this.#held = null;
      closeQuietly(dir);
      throw e;
    }
  }

  /** Closes a kept-open directory (after the last sync has finished). */
  async close(): Promise<void> {
    await this.#running?.catch(() => {});
    const held = this.#held;
    this.#held = null;
    const dir = await held?.catch(() => null);
    if (dir) closeQuietly(dir);
  }
}

function closeQuietly(f: Deno.FsFile): void {
  try {
    f.close();
  } catch {
    // already closed
  }
}

/**
 * Writes one queue file: {@link begin} with the envelope, {@link write}
 * content, {@link commit} to make it durable under its final name. Abort
 * removes the temporary file.
 */
export class QueueWriter {
  #file: Deno.FsFile | null = null;
  #tmp: string;
  #final: string;
  #size = 0;
  #contentBytes = 0;
  #buf: Uint8Array[] = [];
  #bufLen = 0;

  constructor(
    readonly dir: string,
    readonly queueId: string,
    readonly syncer: DirSyncer,
  ) {
    this.#tmp = `${dir}/.${queueId}.tmp`;
    this.#final = `${dir}/${queueId}`;
  }

  get contentBytes(): number {
    return this.#contentBytes;
  }

  /** Creates the temporary file and writes the envelope records. */
  // deno-lint-ignore require-await -- async on purpose: failures reject, never throw
  async begin(env: Envelope, rcpts: Recipient[]): Promise<void> {
    this.#file = Deno.openSync(this.#tmp, { write: true, createNew: true, mode: 0o600 });
    this.#push(encodeHead(env, rcpts));
  }

  /** Appends content (canonical CRLF form). */
  async write(chunk: Uint8Array): Promise<void> {
    for (let off = 0; off < chunk.length; off += CONTENT_CHUNK) {
      const part = chunk.subarray(off, Math.min(chunk.length, off + CONTENT_CHUNK));
      this.#push(contentRecordHeader(part.length));
      this.#push(part);
      this.#contentBytes += part.length;
    }
    if (this.#bufLen >= 256 * 1024) await this.#flush();
  }

  #push(b: Uint8Array): void {
    this.#buf.push(b);
    this.#bufLen += b.length;
  }

  // deno-lint-ignore require-await -- async on purpose: failures reject, never throw
  async #flush(): Promise<void> {
    if (!this.#file || this.#bufLen === 0) return;
    const out = new Uint8Array(this.#bufLen);
    let off = 0;
    for (const b of this.#buf) {
      out.set(b, off);
      off += b.length;
    }
    this.#buf = [];
    this.#bufLen = 0;
    // Page-cache writes: inline is cheaper than the thread pool; the fsync is async.
    let w = 0;
    while (w < out.length) w += this.#file.writeSync(out.subarray(w));
    this.#size += out.length;
  }

  /**
   * Writes the trailer, renames the file into place, and resolves once both
   * its data and the directory entry are on disk. The two syncs run at
   * once: a journaling file system commits them together, so a message
   * costs one disk flush of latency, not two in a row. Until both are done
   * nothing is acknowledged; a crash in between leaves a file that was
   * never acknowledged (complete: delivered, so at worst a duplicate of
   * the client's retry; cut short: moved to corrupt/ at the next start).
   */
  async commit(): Promise<void> {
    const file = this.#file;
    if (!file) throw new Error("QueueWriter.commit before begin");
    const total = this.#size + this.#bufLen + TRAILER_SIZE;
    this.#push(encodeTrailer(total));
    await this.#flush();
    this.#file = null;
    try {
      Deno.renameSync(this.#tmp, this.#final);
    } catch (e) {
      file.close();
      throw e;
    }
    // Both started before either is awaited, so a failure of one never
    // leaves the other unobserved.
    const data = file.syncData();
    const dir = this.syncer.sync();
    try {
      await Promise.all([data, dir]);
    } catch (e) {
      await Promise.allSettled([data, dir]);
      // Not durable, so the sender is told to retry (4xx): take the file back
      // out of the queue, or it would be delivered as well (a duplicate).
      try {
        Deno.removeSync(this.#final);
      } catch {
        // already picked up by qmgr: delivered once more at worst, never lost
      }
      throw e;
    } finally {
      file.close();
    }
  }

  /** Discards the file. */
  async abort(): Promise<void> {
    if (this.#file) {
      try {
        this.#file.close();
      } catch {
        // closed
      }
      this.#file = null;
    }
    await Deno.remove(this.#tmp).catch(() => {});
  }
}

/** An open queue file for reading. */
export class QueueFile {
  private constructor(
    readonly path: string,
    readonly file: Deno.FsFile,
    readonly head: QueueHead,
    readonly size: number,
    readonly prefix: Uint8Array,
    /** The file's mode bits when opened (null where the platform has none). */
    readonly mode: number | null,
  ) {}

  /**
   * Opens and validates a queue file: the head must decode and the trailer
   * must name the file's size. Throws {@link QueueFormatError} if corrupt.
   */
  static open(path: string, opts: { write?: boolean } = {}): Promise<QueueFile> {
    // Synchronous calls on purpose: these are page-cache reads of a few KiB,
    // cheaper inline than a round trip through the blocking thread pool.
    try {
      return Promise.resolve(QueueFile.openSync(path, opts));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** {@link open}, synchronously. A small file is read whole in one read. */
  static openSync(path: string, opts: { write?: boolean } = {}): QueueFile {
    const file = Deno.openSync(path, { read: true, write: opts.write ?? false });
    try {
      const st = file.statSync();
      const size = st.size;
      if (size < TRAILER_SIZE) throw new QueueFormatError(`${path}: truncated (${size} bytes)`);
      let buf = readFullSync(file, Math.min(size, WHOLE_FILE_READ));
      let tail: Uint8Array;
      if (buf.length === size) tail = buf.subarray(size - TRAILER_SIZE);
      else {
        file.seekSync(size - TRAILER_SIZE, Deno.SeekMode.Start);
        tail = readFullSync(file, TRAILER_SIZE);
      }
      if (!checkTrailer(tail, size)) {
        throw new QueueFormatError(`${path}: no valid trailer (truncated or damaged)`);
      }
      for (;;) {
        const head = decodeHead(buf);
        if (head) return new QueueFile(path, file, head, size, buf, st.mode);
        if (buf.length >= size) throw new QueueFormatError(`${path}: no content records`);
        file.seekSync(0, Deno.SeekMode.Start);
        buf = readFullSync(file, Math.min(size, buf.length * 4));
      }
    } catch (e) {
      file.close();
      throw e;
    }
  }

  get envelope(): Envelope {
    return this.head.envelope;
  }

  /**
   * The content's size in bytes, from the file's size alone (nothing is
   * read): the file less its head, its trailer and one record header per
   * full content record. Never below the true size; above it by 5 bytes
   * per record written short of CONTENT_CHUNK.
   */
  get contentSize(): number {
    const body = this.size - this.head.contentOffset - TRAILER_SIZE;
    const records = Math.ceil(body / (CONTENT_CHUNK + 5));
    return Math.max(0, body - 5 * records);
  }

  /** Streams the message content. */
  async *content(): AsyncGenerator<Uint8Array> {
    const dec = new ContentDecoder();
    if (this.prefix.length === this.size) {
      // The whole file was read at open: decode from memory.
      for (const part of dec.push(this.prefix.subarray(this.head.contentOffset))) yield part;
      if (!dec.done) throw new QueueFormatError(`${this.path}: content ends without trailer`);
      return;
    }
    await this.file.seek(this.head.contentOffset, Deno.SeekMode.Start);
    const buf = new Uint8Array(128 * 1024);
    while (!dec.done) {
      const n = await this.file.read(buf);
      if (n === null) throw new QueueFormatError(`${this.path}: content ends without trailer`);
      for (const part of dec.push(buf.subarray(0, n))) yield part.slice();
    }
  }

  /** Reads the whole content into memory (for small messages and bounces). */
  async readContent(limit = Infinity): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const p of this.content()) {
      parts.push(p);
      n += p.length;
      if (n >= limit) break;
    }
    const out = new Uint8Array(n);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return limit < Infinity ? out.subarray(0, Math.min(n, limit)) : out;
  }

  /** Marks recipients done in place (the file must be open for writing), then syncs. */
  async markDone(indexes: number[]): Promise<void> {
    const done = new Uint8Array([RCPT_DONE]);
    for (const i of indexes) {
      const r = this.head.recipients[i];
      if (!r || r.done) continue;
      await this.file.seek(r.statusOffset, Deno.SeekMode.Start);
      await this.file.write(done);
      r.done = true;
    }
    await this.file.syncData();
  }

  close(): void {
    try {
      this.file.close();
    } catch {
      // closed
    }
  }
}

/** Files up to this size are read whole when opened. */
const WHOLE_FILE_READ = 64 * 1024;

function readFullSync(file: Deno.FsFile, n: number): Uint8Array {
  const buf = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = file.readSync(buf.subarray(off));
    if (got === null) throw new QueueFormatError("unexpected end of file");
    off += got;
  }
  return buf;
}

/** One recipient's latest entry in a message's deferral log. */
export interface DeferEntry {
  dsn: string;
  reason: string;
}

/**
 * Reads a message's deferral log (written by qmgr, one JSON object a line):
 * each recipient's latest status and reason. A missing log is an empty map;
 * a line cut short by a crash is skipped.
 */
export async function readDeferLog(path: string): Promise<Map<string, DeferEntry>> {
  const entries = new Map<string, DeferEntry>();
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return entries;
    throw e;
  }
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const rec = JSON.parse(line);
      if (typeof rec?.rcpt === "string") {
        entries.set(rec.rcpt, {
          dsn: typeof rec.dsn === "string" ? rec.dsn : "4.0.0",
          reason: typeof rec.reason === "string" ? rec.reason : "",
        });
      }
    } catch {
      // cut short by a crash
    }
  }
  return entries;
}

/**
 * Forced expiry (postsuper -e/-f) is the queue file's owner-execute bit,
 * as in Postfix: it survives every rename between queues and qmgr's
 * in-place updates, and needs no change to the file's content. qmgr
 * returns such a message to its sender at its next activation.
 */
export const FORCE_EXPIRE_MODE = 0o100;

/** Whether a queue file's mode says forced expiry. */
export function forceExpired(mode: number | null): boolean {
  return mode !== null && (mode & FORCE_EXPIRE_MODE) !== 0;
}

/**
 * "The delay warning was sent" is the queue file's group-execute bit, the
 * role of Postfix's warning time record (which qmgr rewrites to 0 once the
 * warning went out): qmgr sets it after bounce queued the warning, so a
 * restart or another deferral does not send a second one. Like
 * {@link FORCE_EXPIRE_MODE} it survives renames between queues.
 */
export const DELAY_WARNED_MODE = 0o010;

/** Whether a queue file's mode says its delay warning was sent. */
export function delayWarned(mode: number | null): boolean {
  return mode !== null && (mode & DELAY_WARNED_MODE) !== 0;
}
