/**
 * Writing one maildrop file durably, for sendmail and sendmail -bs: the
 * writer (queue file format, exclusive create, fsync, rename) and making
 * the new entry durable (see sendmail.ts for why the two fsyncs).
 *
 * @module
 */
import * as fs from "node:fs";
import { ipcRequest } from "../lib/ipc/mod.ts";
import {
  CONTENT_CHUNK,
  contentRecordHeader,
  encodeHead,
  encodeTrailer,
  type Envelope,
  type QueueDir,
  type Recipient,
  syncDir,
  TRAILER_SIZE,
} from "../lib/queue/mod.ts";

/**
 * Makes the new maildrop entry durable and wakes pickup. Whoever may open
 * maildrop/ (root, the mail owner) fsyncs it; anyone else asks pickup to.
 * Throws only when an fsync itself failed.
 */
export async function syncEntry(q: QueueDir): Promise<void> {
  const socket = q.publicSocket("pickup");
  try {
    await syncDir(q.dir("maildrop"));
  } catch (e) {
    if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    // Not ours to open. If pickup is unreachable, the fsync after the rename
    // stands (see the module comment), and pickup's next scan finds the file.
    const reply = await ipcRequest<{ ok?: boolean; synced?: boolean; error?: string }>(
      socket,
      { op: "wakeup", sync: true },
      { timeoutMs: 10_000 },
    ).catch(() => null);
    if (reply && reply.ok === false) throw new Error(reply.error ?? "pickup could not fsync");
    return;
  }
  // pickup also polls the maildrop, so a missing pickup only delays the message.
  await ipcRequest(socket, { op: "wakeup" }, { timeoutMs: 2000 }).catch(() => {});
}

/**
 * Writes one maildrop file in the queue file format (lib/queue/format.ts):
 * created exclusively as `.NAME.tmp` without following symlinks, given
 * its final mode at once (whatever the umask), content in full-size
 * records, and on {@link commit} the trailer, fsync, rename to NAME and a
 * second fsync that commits the rename.
 */
export class MaildropWriter {
  readonly tmp: string;
  readonly path: string;
  #fd: number | null;
  #size = 0;
  #contentBytes = 0;
  #pending: Uint8Array[] = [];
  #pendingLen = 0;

  private constructor(dir: string, name: string, fd: number) {
    this.tmp = `${dir}/.${name}.tmp`;
    this.path = `${dir}/${name}`;
    this.#fd = fd;
  }

  static create(
    dir: string,
    name: string,
    mode: number,
    env: Envelope,
    rcpts: Recipient[],
  ): MaildropWriter {
    const c = fs.constants;
    const fd = fs.openSync(
      `${dir}/.${name}.tmp`,
      c.O_WRONLY | c.O_CREAT | c.O_EXCL | c.O_NOFOLLOW,
      0o600,
    );
    const w = new MaildropWriter(dir, name, fd);
    try {
      fs.fchmodSync(fd, mode);
      w.#out(encodeHead(env, rcpts));
    } catch (e) {
      w.abort();
      throw e;
    }
    return w;
  }

  get contentBytes(): number {
    return this.#contentBytes;
  }

  /** Appends content (canonical CRLF form). */
  write(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#pending.push(chunk);
    this.#pendingLen += chunk.length;
    this.#contentBytes += chunk.length;
    while (this.#pendingLen >= CONTENT_CHUNK) this.#record(CONTENT_CHUNK);
  }

  /** Writes the last record and the trailer, then makes the file durable under its name. */
  commit(): void {
    const fd = this.#fd!;
    if (this.#pendingLen > 0) this.#record(this.#pendingLen);
    this.#out(encodeTrailer(this.#size + TRAILER_SIZE));
    fs.fsyncSync(fd);
    fs.renameSync(this.tmp, this.path);
    try {
      // Commits the rename too on ext4, XFS and btrfs (the inode's ctime changed with it).
      fs.fsyncSync(fd);
    } catch (e) {
      // Failing means "not queued": the file must not be delivered after all.
      try {
        fs.unlinkSync(this.path);
      } catch {
        // already picked up
      }
      throw e;
    }
    fs.closeSync(fd);
    this.#fd = null;
  }

  /** Discards the temporary file. */
  abort(): void {
    if (this.#fd === null) return;
    try {
      fs.closeSync(this.#fd);
    } catch {
      // closed
    }
    this.#fd = null;
    try {
      fs.unlinkSync(this.tmp);
    } catch {
      // gone
    }
  }

  /** Writes one content record of `len` bytes from the front of the pending chunks. */
  #record(len: number): void {
    this.#out(contentRecordHeader(len));
    for (let need = len; need > 0;) {
      const head = this.#pending[0];
      if (head.length <= need) {
        this.#out(head);
        this.#pending.shift();
        need -= head.length;
      } else {
        this.#out(head.subarray(0, need));
        this.#pending[0] = head.subarray(need);
        need = 0;
      }
    }
    this.#pendingLen -= len;
  }

  #out(b: Uint8Array): void {
    for (let off = 0; off < b.length;) off += fs.writeSync(this.#fd!, b, off, b.length - off);
    this.#size += b.length;
  }
}
