/**
 * The client side shared by the `tcp:` and `socketmap:` tables: one
 * stream connection (TCP or UNIX) with a deadline on every read, write and
 * connect, and a byte buffer to read lines and netstrings from. No
 * protocol here.
 *
 * @module
 */
import { concat } from "../bytes/mod.ts";

/** Where to connect. */
export type Endpoint =
  | { transport: "tcp"; hostname: string; port: number }
  | { transport: "unix"; path: string };

/** An I/O step that took too long, the peer hung up, or a reply broke a limit. */
export class NetError extends Error {
  override readonly name = "NetError";
  constructor(message: string, readonly eof = false) {
    super(message);
  }
}

function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
  onTimeout: () => void,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new NetError(`${what}: timed out after ${ms / 1000}s`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A connected stream with buffered reads and per-operation deadlines. */
export class NetStream {
  private buf: Uint8Array = new Uint8Array(0);
  private closed = false;
  /** When the connection was made (Date.now()). */
  readonly since = Date.now();

  private constructor(private readonly conn: Deno.Conn, private readonly timeoutMs: number) {}

  /** Connects within timeoutMs. */
  static async connect(ep: Endpoint, timeoutMs: number): Promise<NetStream> {
    const p: Promise<Deno.Conn> = ep.transport === "tcp"
      ? Deno.connect({ hostname: ep.hostname, port: ep.port })
      : Deno.connect({ transport: "unix", path: ep.path });
    p.catch(() => {});
    const conn = await withTimeout(p, timeoutMs, "connect", () => {
      p.then((c) => c.close()).catch(() => {});
    });
    return new NetStream(conn, timeoutMs);
  }

  /** Writes all bytes. */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      off += await withTimeout(
        this.conn.write(data.subarray(off)),
        this.timeoutMs,
        "write",
        () => this.close(),
      );
    }
  }

  private async fill(): Promise<void> {
    const chunk = new Uint8Array(8192);
    const n = await withTimeout(this.conn.read(chunk), this.timeoutMs, "read", () => this.close());
    if (n === null) throw new NetError("unexpected EOF", true);
    this.buf = concat([this.buf, chunk.subarray(0, n)]);
  }

  /** One line without its "\n"; NetError when longer than max bytes (the "\n" counted). */
  async readLine(max: number): Promise<Uint8Array> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0 && nl < max) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        return line;
      }
      if (this.buf.length >= max) throw new NetError(`text longer than ${max}`);
      await this.fill();
    }
  }

  /** Exactly n bytes. */
  async readBytes(n: number): Promise<Uint8Array> {
    while (this.buf.length < n) await this.fill();
    const out = this.buf.slice(0, n);
    this.buf = this.buf.slice(n);
    return out;
  }

  /** Closes the connection (idempotent). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

/** `host:port` or `[v6]:port` split; undefined when malformed. */
export function splitHostPort(text: string): { hostname: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  const hostname = m[1] ?? m[2];
  if (hostname === "" || port < 1 || port > 65535) return undefined;
  return { hostname, port };
}
