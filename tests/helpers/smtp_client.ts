/**
 * The tests' one SMTP client: a connection that reads whole replies
 * (multi-line ones too), over plaintext or, after {@link SmtpClient.startTls},
 * TLS. Every interop and integration test talks SMTP through it, directly or
 * through the dialog runner `playScript` (smtp_script.ts) and its wrappers
 * `smtpReplies` and `smtpSend` (instance.ts).
 *
 * A reply that does not come within the reply timeout throws
 * {@link SmtpReplyTimeout} (saying what was last sent and what arrived),
 * a connection closed before a whole reply throws {@link SmtpConnectionClosed}:
 * a test never hangs on a silent server. A read still pending at a timeout
 * is kept, so no byte is lost when the caller goes on.
 *
 * It is deliberately not lib/smtp's ReplyParser: a test client must not
 * share the parser of the code under test, and it must record whatever a
 * server sends (a reply ends at the first line that is not "NNN-...").
 * Replies are decoded as UTF-8, or Latin-1 (one char a byte) when asked,
 * for tests that compare raw 8-bit bytes.
 */
import net from "node:net";
import { type Reply, ReplyParser } from "../../lib/smtp/mod.ts";

/** No whole reply came within the reply timeout. */
export class SmtpReplyTimeout extends Error {
  override readonly name = "SmtpReplyTimeout";
}

/** The server closed the connection (or it failed) before a whole reply. */
export class SmtpConnectionClosed extends Error {
  override readonly name = "SmtpConnectionClosed";
}

/** What the client reads from and writes to: a Deno.Conn, a TLS one, or a node:net socket. */
export interface ByteStream {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Options for {@link SmtpClient.connect}. */
export interface SmtpClientOptions {
  /** Server address. @default "127.0.0.1" */
  host?: string;
  /** Local address to connect from (e.g. 127.0.0.2, outside mynetworks). @default the system's choice */
  localAddress?: string;
  /** How long to wait for each reply, in ms. @default 10000 */
  replyTimeoutMs?: number;
  /** "latin1": one char per byte, for raw 8-bit comparisons. @default "utf-8" */
  encoding?: "utf-8" | "latin1";
}

const enc = new TextEncoder();

/** Latin-1: one byte per char, so a string can carry any byte. */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/**
 * A whole reply (as {@link SmtpClient.reply} returns it) as lib/smtp's
 * Reply: code, enhanced code, and the text without them, as Postwarden's
 * own SMTP client sees it. Throws on a malformed reply.
 */
export function parsedReply(lines: string[]): Reply {
  const [r] = new ReplyParser().push(enc.encode(lines.map((l) => `${l}\r\n`).join("")));
  if (!r) throw new Error(`not a whole SMTP reply: ${JSON.stringify(lines)}`);
  return r;
}

/** Latin-1: each byte one char (TextDecoder's "latin1" is windows-1252, not this). */
export function latin1String(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) {
    s += String.fromCharCode(...b.subarray(i, i + 8192));
  }
  return s;
}

/** An SMTP connection that reads one whole reply at a time. */
export class SmtpClient {
  /** The stream (replaced by the TLS one after startTls). */
  conn: ByteStream;
  #buf = new Uint8Array(0);
  #pending: Promise<Uint8Array | null> | null = null;
  #closed = false;
  #lastSent = "(nothing: the greeting)";
  readonly #timeoutMs: number;
  readonly #latin1: boolean;
  readonly #decode: (b: Uint8Array) => string;

  constructor(conn: ByteStream, opts: Pick<SmtpClientOptions, "replyTimeoutMs" | "encoding"> = {}) {
    this.conn = conn;
    this.#timeoutMs = opts.replyTimeoutMs ?? 10_000;
    const utf8 = new TextDecoder();
    this.#latin1 = opts.encoding === "latin1";
    this.#decode = this.#latin1 ? latin1String : (b) => utf8.decode(b);
  }

  /** Connects to host:port (node:net when a local address is chosen, else Deno.connect). */
  static async connect(port: number, opts: SmtpClientOptions = {}): Promise<SmtpClient> {
    const host = opts.host ?? "127.0.0.1";
    const conn = opts.localAddress
      ? await NodeStream.connect(host, port, opts.localAddress)
      : await Deno.connect({ hostname: host, port });
    return new SmtpClient(conn, opts);
  }

  /** Takes what is buffered and not (yet) a whole reply, e.g. a partial line before a close. */
  takeUnread(): string {
    const text = this.#decode(this.#buf);
    this.#buf = new Uint8Array(0);
    return text;
  }

  /** True once the server closed the connection (seen by a read). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The next whole reply, as its lines without CRLF. Throws
   * {@link SmtpReplyTimeout} or {@link SmtpConnectionClosed}.
   */
  async reply(): Promise<string[]> {
    const end = Date.now() + this.#timeoutMs;
    for (;;) {
      const r = this.#take();
      if (r) return r;
      if (this.#closed) {
        throw new SmtpConnectionClosed(
          `connection closed after ${this.#lastSent}; received ${this.#show()}`,
        );
      }
      await this.#fill(end);
    }
  }

  /** The last line of the next reply (its code and text). */
  async replyLine(): Promise<string> {
    return (await this.reply()).at(-1)!;
  }

  /** Sends text (UTF-8, or one byte a char with encoding "latin1") or bytes as they are. */
  async send(data: string | Uint8Array, label?: string): Promise<void> {
    this.#lastSent = label ?? (typeof data === "string" ? JSON.stringify(data) : "bytes");
    const bytes = typeof data !== "string"
      ? data
      : this.#latin1
      ? latin1Bytes(data)
      : enc.encode(data);
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** Sends one command line (CRLF added) and returns its whole reply. */
  async command(line: string): Promise<string[]> {
    await this.send(`${line}\r\n`, JSON.stringify(line));
    return await this.reply();
  }

  /**
   * Every reply until the server closes the connection, then any unended
   * last line; a reply that times out throws.
   */
  async repliesUntilClosed(): Promise<string[][]> {
    const out: string[][] = [];
    for (;;) {
      try {
        out.push(await this.reply());
      } catch (e) {
        if (e instanceof SmtpConnectionClosed) {
          // A last line the server did not end before closing, as it came.
          if (this.#buf.length) {
            out.push(this.takeUnread().split("\n").map((l) => l.replace(/\r$/, "")));
          }
          return out;
        }
        throw e;
      }
    }
  }

  /**
   * True when the server closes the connection before it sends anything
   * more; false when bytes come instead; {@link SmtpReplyTimeout} when
   * neither happens within the reply timeout.
   */
  async waitClosed(): Promise<boolean> {
    const end = Date.now() + this.#timeoutMs;
    const had = this.#buf.length;
    while (!this.#closed && this.#buf.length === had) await this.#fill(end);
    return this.#closed && this.#buf.length === had;
  }

  /** Starts TLS (after a 220 to STARTTLS), verifying the server as `hostname` against `ca` (PEM). */
  async startTls(ca: string, hostname = "mx.test.example"): Promise<void> {
    if (this.#pending || this.#buf.length) {
      throw new Error("startTls with unread plaintext from the server");
    }
    this.conn = await Deno.startTls(this.conn as Deno.TcpConn, { hostname, caCerts: [ca] });
  }

  /** Closes the connection (twice is harmless). */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  /** What is buffered and not yet a whole reply, for messages. */
  #show(): string {
    return JSON.stringify(this.#decode(this.#buf));
  }

  /** Takes one whole reply off the buffer, if there is one. */
  #take(): string[] | null {
    const lines: string[] = [];
    let pos = 0;
    for (;;) {
      const nl = this.#buf.indexOf(10, pos);
      if (nl < 0) return null;
      const line = this.#decode(this.#buf.subarray(pos, nl)).replace(/\r$/, "");
      pos = nl + 1;
      lines.push(line);
      if (!/^\d{3}-/.test(line)) {
        this.#buf = this.#buf.slice(pos);
        return lines;
      }
    }
  }

  /** Reads once more into the buffer, or throws at the deadline (keeping the read). */
  async #fill(end: number): Promise<void> {
    if (!this.#pending) {
      const chunk = new Uint8Array(65536);
      this.#pending = this.conn.read(chunk).then(
        (n) => n === null ? null : chunk.slice(0, n),
        () => null,
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), Math.max(0, end - Date.now()));
    });
    const got = await Promise.race([this.#pending, late]);
    clearTimeout(timer);
    if (got === "timeout") {
      throw new SmtpReplyTimeout(
        `no whole SMTP reply within ${this.#timeoutMs} ms after ${this.#lastSent}; ` +
          `received ${this.#show()}`,
      );
    }
    this.#pending = null;
    if (got === null) {
      this.#closed = true;
      return;
    }
    const buf = new Uint8Array(this.#buf.length + got.length);
    buf.set(this.#buf);
    buf.set(got, this.#buf.length);
    this.#buf = buf;
  }
}

/** A node:net socket as a {@link ByteStream} (Deno.connect cannot choose the local address). */
class NodeStream implements ByteStream {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: (() => void) | null = null;

  private constructor(private sock: net.Socket) {
    const poke = () => {
      const w = this.#wake;
      this.#wake = null;
      w?.();
    };
    sock.on("data", (d: Uint8Array) => {
      this.#chunks.push(new Uint8Array(d));
      poke();
    });
    for (const ev of ["end", "close", "error"]) {
      sock.on(ev, () => {
        this.#ended = true;
        poke();
      });
    }
  }

  static connect(host: string, port: number, localAddress: string): Promise<NodeStream> {
    const sock = net.connect({ host, port, localAddress });
    return new Promise((resolve, reject) => {
      sock.once("connect", () => resolve(new NodeStream(sock)));
      sock.once("error", reject);
    });
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      await new Promise<void>((r) => this.#wake = r);
    }
    const c = this.#chunks[0];
    const n = Math.min(p.length, c.length);
    p.set(c.subarray(0, n));
    if (n === c.length) this.#chunks.shift();
    else this.#chunks[0] = c.subarray(n);
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#ended) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      this.sock.write(p, (err?: Error | null) => err ? reject(err) : resolve(p.length));
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
