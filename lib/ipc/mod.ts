/**
 * The one IPC layer between Postwarden processes: length-prefixed frames
 * over UNIX domain sockets in `private/` (daemon to daemon) and `public/`
 * (client programs to daemons).
 *
 * Frame: 4-byte big-endian length of what follows, then one type byte, then
 * the payload. Types: `M` a JSON message, `D` a chunk of message content,
 * `E` end of content. On top sits a typed request/response helper. Every
 * read has a timeout; a malformed or oversize frame raises {@link IpcError}
 * and the caller drops the connection (the peer retries).
 *
 * This module does no retrying and knows nothing of any daemon's protocol.
 */

const TYPE_MSG = 0x4d; // "M"
const TYPE_DATA = 0x44; // "D"
const TYPE_END = 0x45; // "E"

/** Largest frame accepted; content is streamed in smaller chunks. */
export const MAX_FRAME = 4 * 1024 * 1024;

/** A broken, timed-out or malformed IPC exchange. Always a temporary failure. */
export class IpcError extends Error {
  override readonly name = "IpcError";
  /**
   * The peer did not answer in time (it may still be working on the
   * request), as opposed to a connection that failed or a malformed frame.
   */
  readonly timeout: boolean;

  constructor(message: string, opts: { timeout?: boolean } = {}) {
    super(message);
    this.timeout = opts.timeout ?? false;
  }
}

/** One received frame. */
export type Frame =
  | { kind: "msg"; msg: Record<string, unknown> }
  | { kind: "data"; data: Uint8Array }
  | { kind: "end" };

/** Options for connections. */
export interface IpcOptions {
  /** Read timeout in milliseconds. @default 300_000 */
  timeoutMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A framed connection. */
export class IpcConn {
  readonly #conn: Deno.Conn;
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #eof = false;
  #closed = false;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** The write in progress: the next one starts after it. */
  #writing: Promise<void> = Promise.resolve();
  timeoutMs: number;

  constructor(conn: Deno.Conn, opts: IpcOptions = {}) {
    this.#conn = conn;
    this.timeoutMs = opts.timeoutMs ?? 300_000;
  }

  /** Queues a JSON message; it is written at the next {@link flush} (or send). */
  queueMsg(msg: object): void {
    this.#queueFrame(TYPE_MSG, encoder.encode(JSON.stringify(msg)));
  }

  /** Queues a content chunk. */
  queueData(chunk: Uint8Array): void {
    for (let off = 0; off < chunk.length; off += MAX_FRAME - 1) {
      this.#queueFrame(TYPE_DATA, chunk.subarray(off, Math.min(chunk.length, off + MAX_FRAME - 1)));
    }
  }

  /** Queues the end-of-content marker. */
  queueEnd(): void {
    this.#queueFrame(TYPE_END, new Uint8Array(0));
  }

  /** Sends a JSON message now (with anything queued before it). */
  async send(msg: object): Promise<void> {
    this.queueMsg(msg);
    await this.flush();
  }

  /**
   * Writes everything queued, as one write where possible. Concurrent
   * flushes (a client pipelining requests from several tasks) write one
   * after the other: a partial write is finished before the next begins,
   * so frames never interleave on the socket.
   */
  flush(): Promise<void> {
    if (this.#pending.length === 0) return Promise.resolve();
    const parts = this.#pending;
    const total = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    let out: Uint8Array;
    if (parts.length === 1) out = parts[0];
    else {
      out = new Uint8Array(total);
      let off = 0;
      for (const p of parts) {
        out.set(p, off);
        off += p.length;
      }
    }
    const write = this.#writing.then(async () => {
      try {
        let off = 0;
        while (off < out.length) off += await this.#conn.write(out.subarray(off));
      } catch (e) {
        throw new IpcError(`write: ${(e as Error).message}`);
      }
    });
    this.#writing = write.catch(() => {});
    return write;
  }

  #queueFrame(type: number, payload: Uint8Array): void {
    const head = new Uint8Array(5);
    new DataView(head.buffer).setUint32(0, payload.length + 1);
    head[4] = type;
    if (payload.length < 8192) {
      const f = new Uint8Array(5 + payload.length);
      f.set(head);
      f.set(payload, 5);
      this.#pending.push(f);
    } else {
      this.#pending.push(head, payload);
    }
    this.#pendingBytes += 5 + payload.length;
  }

  /** Receives the next frame; `null` at a clean end of stream between frames. */
  async recv(timeoutMs = this.timeoutMs): Promise<Frame | null> {
    if (!(await this.#fill(4, timeoutMs))) {
      if (this.#end - this.#start === 0) return null;
      throw new IpcError("connection closed inside a frame");
    }
    const len = new DataView(this.#buf.buffer, this.#buf.byteOffset + this.#start, 4).getUint32(0);
    if (len < 1 || len > MAX_FRAME) {
      throw new IpcError(`malformed frame: length ${len}`);
    }
    if (!(await this.#fill(4 + len, timeoutMs))) {
      throw new IpcError("connection closed inside a frame");
    }
    const type = this.#buf[this.#start + 4];
    const payload = this.#buf.slice(this.#start + 5, this.#start + 4 + len);
    this.#start += 4 + len;
    switch (type) {
      case TYPE_MSG: {
        let msg: unknown;
        try {
          msg = JSON.parse(decoder.decode(payload));
        } catch {
          throw new IpcError("malformed frame: bad JSON");
        }
        if (typeof msg !== "object" || msg === null || Array.isArray(msg)) {
          throw new IpcError("malformed frame: message is not an object");
        }
        return { kind: "msg", msg: msg as Record<string, unknown> };
      }
      case TYPE_DATA:
        return { kind: "data", data: payload };
      case TYPE_END:
        return { kind: "end" };
      default:
        throw new IpcError(`malformed frame: type ${type}`);
    }
  }

  /** Receives a frame that must be a JSON message. */
  async recvMsg<T = Record<string, unknown>>(timeoutMs = this.timeoutMs): Promise<T> {
    const f = await this.recv(timeoutMs);
    if (f === null) throw new IpcError("connection closed by peer");
    if (f.kind !== "msg") throw new IpcError(`expected a message, got ${f.kind}`);
    return f.msg as T;
  }

  async #fill(n: number, timeoutMs: number): Promise<boolean> {
    while (this.#end - this.#start < n) {
      if (this.#eof) return false;
      if (this.#buf.length - this.#start < n || this.#buf.length - this.#end < 4096) {
        const size = Math.max(this.#buf.length, n * 2, 64 * 1024);
        const nb = new Uint8Array(size);
        nb.set(this.#buf.subarray(this.#start, this.#end));
        this.#end -= this.#start;
        this.#start = 0;
        this.#buf = nb;
      }
      const got = await readWithTimeout(this.#conn, this.#buf.subarray(this.#end), timeoutMs);
      if (got === null) this.#eof = true;
      else this.#end += got;
    }
    return true;
  }

  /** Closes the connection; safe to call twice. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed by the peer
    }
  }
}

async function readWithTimeout(
  conn: Deno.Conn,
  buf: Uint8Array,
  timeoutMs: number,
): Promise<number | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new IpcError(`read timeout after ${timeoutMs}ms`, { timeout: true })),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([conn.read(buf), timeout]);
  } catch (e) {
    if (e instanceof IpcError) throw e;
    throw new IpcError(`read: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Options for {@link ipcConnect}. */
export interface IpcConnectOptions extends IpcOptions {
  /**
   * How long a missing or refusing socket is tried again: the daemon
   * behind it may be (re)starting, as master starts every daemon at once
   * (20 ms apart at first, then up to 500 ms). @default 0
   */
  retryMs?: number;
}

/**
 * Starts the daemon behind a socket path that has none (lib/service
 * wake.ts: daemons started on demand); true when one is starting, false
 * when the path is not one it starts.
 */
export type IpcWaker = (path: string) => Promise<boolean>;

let waker: IpcWaker | null = null;

/** How long a daemon that was woken has to bind its socket. */
const WAKE_WAIT_MS = 30_000;

/** Installs the process's {@link IpcWaker} (lib/service runService does, in daemons). */
export function setIpcWaker(w: IpcWaker | null): void {
  waker = w;
}

/**
 * Connects to a UNIX socket; a missing or refusing socket is an
 * {@link IpcError}, unless the {@link IpcWaker} starts its daemon: then
 * the socket is tried until it binds.
 */
export async function ipcConnect(path: string, opts: IpcConnectOptions = {}): Promise<IpcConn> {
  let deadline = Date.now() + (opts.retryMs ?? 0);
  let woken = false;
  for (let delay = 20;; delay = Math.min(delay * 2, 500)) {
    try {
      const conn = await Deno.connect({ transport: "unix", path });
      return new IpcConn(conn, opts);
    } catch (e) {
      const notUp = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.ConnectionRefused;
      if (notUp && !woken && waker) {
        woken = true;
        let starting = false;
        try {
          starting = await waker(path);
        } catch (w) {
          throw new IpcError(
            `connect to ${path}: ${(e as Error).message}; ${(w as Error).message}`,
          );
        }
        if (starting) deadline = Math.max(deadline, Date.now() + WAKE_WAIT_MS);
      }
      if (!notUp || Date.now() + delay > deadline) {
        throw new IpcError(`connect to ${path}: ${(e as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** A listening IPC endpoint. */
export interface IpcServer {
  close(): void;
  /** Resolves when the accept loop has ended. */
  readonly done: Promise<void>;
}

/** A running accept loop. */
export interface AcceptLoop {
  /** Closes the listener; the loop ends. */
  close(): void;
  /** Resolves when the loop has ended. */
  readonly done: Promise<void>;
}

/**
 * Accepts connections until the listener is closed. A failed accept that
 * is not the listener closing (EMFILE: out of file descriptors, ENFILE,
 * ECONNABORTED) is reported and retried after a pause, as Postfix's
 * servers do: a daemon must never stay alive serving nothing.
 */
export function acceptLoop<C extends Deno.Conn>(
  listener: Deno.Listener<C>,
  onConn: (conn: C) => void,
  opts: { onError?: (e: Error) => void; pauseMs?: number } = {},
): AcceptLoop {
  let closed = false;
  const done = (async () => {
    while (!closed) {
      let conn: C;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (closed || e instanceof Deno.errors.BadResource) return;
        opts.onError?.(e as Error);
        await new Promise((r) => setTimeout(r, opts.pauseMs ?? 100));
        continue;
      }
      onConn(conn);
    }
  })();
  return {
    close() {
      closed = true;
      try {
        listener.close();
      } catch {
        // already closed
      }
    },
    done,
  };
}

/**
 * Listens on a UNIX socket (replacing a stale socket file) and runs the
 * handler for each connection. Handler errors close that connection only.
 */
export function ipcListen(
  path: string,
  handler: (conn: IpcConn) => Promise<void>,
  opts: IpcOptions & { onError?: (e: Error) => void } = {},
): IpcServer {
  return unixListen(path, (raw) => {
    const conn = new IpcConn(raw, opts);
    handler(conn).catch((e) => opts.onError?.(e as Error)).finally(() => conn.close());
  }, { onError: (e) => opts.onError?.(new Error(`accept: ${e.message}`)) });
}

/**
 * Listens on a UNIX socket for byte streams (no IPC framing: a "pass"
 * service's connections, handed over by postscreen), replacing a stale
 * socket file as {@link ipcListen} does.
 */
export function unixListen(
  path: string,
  onConn: (conn: Deno.UnixConn) => void,
  opts: { onError?: (e: Error) => void } = {},
): IpcServer {
  // Bound under a name of its own, then renamed over the path: a stale
  // socket, or the one a daemon draining after a reload still holds, is
  // replaced in one step, and Deno's unlink of the bound name when the
  // listener closes (or its Worker ends) never removes the path another
  // daemon now serves.
  const staging = bindPath(path);
  try {
    Deno.removeSync(staging);
  } catch {
    // none left over
  }
  const listener = Deno.listen({ transport: "unix", path: staging });
  let ino: number | null;
  try {
    Deno.renameSync(staging, path);
    ino = Deno.lstatSync(path).ino;
  } catch (e) {
    listener.close();
    throw e;
  }
  const loop = acceptLoop(listener, onConn, opts);
  return {
    done: loop.done,
    close() {
      // The path goes with the listener while it is still this one's, so a
      // client finds no socket (and wakes a daemon started on demand).
      try {
        if (Deno.lstatSync(path).ino === ino) Deno.removeSync(path);
      } catch {
        // gone or not ours
      }
      ino = null;
      loop.close();
    },
  };
}

/** The longest UNIX-domain socket path (sun_path less its terminating NUL, on Linux). */
export const UNIX_PATH_MAX = 107;

/**
 * The name a socket is bound under before it is renamed to `path`
 * (`private/.cleanup` for `private/cleanup`: one character more, as socket
 * paths are short); lib/permissions grants it with the socket.
 */
export function bindPath(path: string): string {
  const slash = path.lastIndexOf("/");
  return `${path.slice(0, slash + 1)}.${path.slice(slash + 1)}`;
}

/** One request, one response: connect, send, await the reply, close. */
export async function ipcRequest<T = Record<string, unknown>>(
  path: string,
  msg: object,
  opts: IpcConnectOptions = {},
): Promise<T> {
  const conn = await ipcConnect(path, opts);
  try {
    await conn.send(msg);
    return await conn.recvMsg<T>();
  } finally {
    conn.close();
  }
}
