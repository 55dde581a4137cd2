/**
 * A node Duplex over a Deno connection, so that node:tls (what Deno's
 * TLS with our own certificate checks and settings runs on) can take over
 * a socket Deno opened or accepted: smtpd's STARTTLS and wrapper mode, the
 * SMTP client's STARTTLS. It reads from the connection only while node
 * asks for data (backpressure) and writes each chunk whole.
 *
 * @module
 */
import type { Duplex as DuplexType } from "node:stream";
import type { TLSSocket as TLSSocketType } from "node:tls";

/** What a session reads and writes after a TLS handshake. */
export interface ByteStream {
  read(buf: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/** What a caller adds to the plain byte pipe. */
export interface ConnDuplexOptions {
  /** Bytes already read from the connection that come first (after a PROXY header). */
  prefix?: Uint8Array | null;
  /**
   * Told when the peer ends its stream (or the read fails): `seen` is set
   * before node sees the end, `onEof` called after.
   */
  eof?: { seen: boolean; onEof: () => void };
  /** Close the connection when node destroys the stream. @default false */
  closeOnDestroy?: boolean;
}

/** The Duplex; `Duplex` is node:stream's class, imported by the caller when TLS is first used. */
export function connDuplex(
  Duplex: typeof import("node:stream").Duplex,
  conn: Deno.Conn,
  opts: ConnDuplexOptions = {},
): DuplexType {
  let prefix = opts.prefix ?? null;
  let reading = false;
  return new Duplex({
    read() {
      if (prefix) {
        const p = prefix;
        prefix = null;
        if (!this.push(p)) return;
      }
      if (reading) return;
      reading = true;
      (async () => {
        for (;;) {
          const buf = new Uint8Array(16 * 1024);
          let n: number | null;
          try {
            n = await conn.read(buf);
          } catch {
            n = null;
          }
          if (n === null) {
            if (opts.eof) opts.eof.seen = true;
            this.push(null);
            opts.eof?.onEof();
            return;
          }
          if (!this.push(buf.subarray(0, n))) {
            reading = false;
            return;
          }
        }
      })();
    },
    write(chunk: Uint8Array, _enc: string, cb: (e?: Error | null) => void) {
      (async () => {
        let off = 0;
        while (off < chunk.length) off += await conn.write(chunk.subarray(off));
      })().then(() => cb(), (e) => cb(e as Error));
    },
    final(cb: (e?: Error | null) => void) {
      try {
        conn.closeWrite();
      } catch {
        // already closed
      }
      cb();
    },
    destroy(e: Error | null, cb: (e?: Error | null) => void) {
      if (!opts.closeOnDestroy) return cb(e); // node's own behaviour
      try {
        conn.close();
      } catch {
        // already closed
      }
      cb();
    },
  });
}

/** A TLS socket as the session's {@link ByteStream}. */
export function socketStream(socket: TLSSocketType, failure: () => Error | null): ByteStream {
  const chunks = socket[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  let rest: Uint8Array | null = null;
  return {
    read: async (buf) => {
      if (!rest) {
        if (failure()) return null;
        let r: IteratorResult<Uint8Array>;
        try {
          r = await chunks.next();
        } catch {
          return null; // a TLS alert or a reset: the end of this stream
        }
        if (r.done) return null;
        rest = new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.length);
      }
      const n = Math.min(buf.length, rest.length);
      buf.set(rest.subarray(0, n));
      rest = n < rest.length ? rest.subarray(n) : null;
      return n;
    },
    write: (bytes) =>
      new Promise<number>((resolve, reject) => {
        const e = failure();
        if (e || socket.destroyed) {
          reject(e ?? new Error("TLS connection closed"));
          return;
        }
        socket.write(bytes, (err?: Error | null) => err ? reject(err) : resolve(bytes.length));
      }),
    close: () => socket.destroy(),
  };
}
