/**
 * An HTTPS GET that connects by IP address, for fetchStsPolicy (fetch.ts)
 * in a sandbox, and the one POST that SMTP TLS reporting needs (RFC 8460
 * 5.4: a gzipped JSON report, application/tlsrpt+gzip, to an https: rua).
 * Deno's --allow-net can grant "any IPv4 address, port 443"
 * (`0.0.0.0/0:443`) but not "any host name, port 443" (a wildcard is only
 * `*.suffix`), and the global fetch checks its grant against the URL's host
 * name. So this resolves the host name with the resolver it is given,
 * connects to each address in turn until one answers (Deno.connect: the
 * grant is checked on the address), runs TLS over that connection for the
 * host name (Deno.startTls: SNI and the certificate check are for the name,
 * against Deno's roots plus `caCerts`; it needs no grant of its own), and
 * speaks just enough HTTP/1.1 for one GET or POST:
 *
 * - only https: URLs; one request per connection ("Connection: close"),
 *   no pooling;
 * - a GET has no headers or body from `init`; a POST has a Uint8Array
 *   body, sent whole after its Content-Length (no chunked request body,
 *   no Expect: 100-continue: a report is small, and a server that answers
 *   before reading it all makes the write, so the fetch, fail), and at
 *   most a Content-Type header from `init` (a plain object; the media type
 *   visible ASCII and spaces; application/octet-stream if none is given);
 * - redirects are never followed: a 3xx comes back as it is, Location and
 *   all (fetchStsPolicy refuses it);
 * - the response is read as from a hostile server: CRLF line ends, no
 *   control characters, no obs-fold, header names that are tokens; at most
 *   32 KiB and 100 header lines before the body (1xx responses included,
 *   at most 5 of them skipped); the body framed by chunked,
 *   Content-Length or the end of the connection (one that ends without a
 *   TLS close_notify is cut off, an error), never by two of them; the
 *   body stream errors once it would deliver more than `maxBody` octets;
 * - an AbortSignal closes the connection wherever the exchange is, and
 *   the connection is closed at the end of the body, on an error or a
 *   cancel.
 *
 * Failures are fetch's: a TypeError "fetch failed" (or "body read failed"
 * from the body stream) whose cause, an AddressFetchError, says which host
 * and what went wrong ("mta-sts.example.com: header section larger than
 * 32768 octets"), with the underlying error, if any, as its own cause; an
 * abort rejects with the signal's reason.
 *
 * One leak is Deno's and cannot be helped here: in Deno 2.9 the TLS
 * handshake runs in a task of its own that holds the TCP socket until the
 * handshake ends, and closing the TlsConn does not end it. A server that
 * accepts the connection and never answers the ClientHello keeps that
 * socket open after the fetch was aborted (the Deno resource is closed; the
 * kernel's socket stays until the server speaks or closes, or TCP gives up
 * on unacknowledged data).
 *
 * Not done: other methods, other request headers or bodies (refused),
 * content codings (none is asked for), proxies, HTTP/2, keep-alive, and
 * anything the callers check themselves (status, media type, policy size).
 *
 * @module
 */
import { concat } from "../bytes/mod.ts";
import { ipLiteral } from "../dns/mod.ts";

/** Options for {@link addressFetch}. */
export interface AddressFetchOptions {
  /** The IPv4 addresses of a host name (e.g. from lib/dns). Throwing = the name does not resolve. */
  resolve: (hostname: string) => Promise<string[]>;
  /** Extra trusted CA certificates (PEM), in addition to Deno's default roots. */
  caCerts?: string[];
  /** TCP connect. @default Deno.connect */
  connect?: (o: { hostname: string; port: number }) => Promise<Deno.TcpConn>;
  /** Most body octets read; more makes the body stream error. @default 65536 */
  maxBody?: number;
}

/** What went wrong in one exchange; the cause of the TypeError that fetch callers see. */
class AddressFetchError extends Error {
  override readonly name = "AddressFetchError";
}

/** Most octets before the body: status lines and header lines of all responses, CRLFs included. */
const MAX_HEAD = 32 * 1024;
/** Most header lines before the body, of all responses. */
const MAX_HEAD_LINES = 100;
/** Most 1xx responses skipped before the final one. */
const MAX_INTERIM = 5;
/** Longest chunk-size line (with its extensions), CRLF included. */
const MAX_CHUNK_LINE = 1024;
/** Octets asked of one read. */
const READ_SIZE = 16 * 1024;
/** Statuses whose Response may not have a body (and whose message has none worth reading). */
const NULL_BODY = new Set([204, 205, 304]);
/** RFC 9110 5.6.2 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * A POST's Content-Type: type/subtype, then any parameters in visible ASCII
 * and spaces; no control character, so nothing can end the header line.
 */
const MEDIA_TYPE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?: *;[\x20-\x7e]*)?$/;
/** A POST's Content-Type when `init` gives none (RFC 9110 8.3: what a recipient would assume). */
const DEFAULT_TYPE = "application/octet-stream";

/**
 * A fetch-compatible function (only what its callers use): GET of an
 * https: URL (fetchStsPolicy), or POST of a Uint8Array (a TLS report).
 */
export function addressFetch(
  opts: AddressFetchOptions,
): (input: string | URL, init?: RequestInit) => Promise<Response> {
  const maxBody = opts.maxBody ?? 65536;
  return async (input, init = {}) => {
    const url = new URL(input);
    if (url.protocol !== "https:") {
      throw new TypeError(`addressFetch: only https: URLs, not ${url.protocol}`);
    }
    if (url.username || url.password) {
      throw new TypeError("addressFetch: a URL with credentials");
    }
    const request = requestBytes(url, init);
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();

    let close = () => {};
    const onAbort = () => close();
    try {
      const conn = await open(url, opts, signal);
      close = closer(conn);
      signal?.addEventListener("abort", onAbort, { once: true });
      await writeAll(conn, request);
      const reader = new Reader(conn);
      const head = await readHead(reader);
      const next = NULL_BODY.has(head.status) ? null : bodyReader(reader, head.headers, maxBody);
      signal?.removeEventListener("abort", onAbort);
      if (signal?.aborted) throw signal.reason;
      const body = next ? bodyStream(next, close, maxBody, url.hostname, signal) : null;
      if (!next) close();
      return new Response(body, {
        status: head.status,
        statusText: head.statusText,
        headers: head.headers,
      });
    } catch (e) {
      signal?.removeEventListener("abort", onAbort);
      close();
      if (signal?.aborted) throw signal.reason;
      throw failed("fetch failed", url.hostname, e);
    }
  };
}

/**
 * The request as written, head and body: checked and built before any
 * connection, so that a refused `init` costs nothing and a body the caller
 * changes while the connection is made is sent as it was when called.
 */
function requestBytes(url: URL, init: RequestInit): Uint8Array {
  const method = (init.method ?? "GET").toUpperCase();
  const start = `${method} ${url.pathname + url.search} HTTP/1.1\r\nHost: ${url.host}\r\n` +
    "User-Agent: Postwarden-MTA-STS\r\n";
  const encode = (head: string) => new TextEncoder().encode(head);
  if (method === "GET") {
    if (init.body != null) throw new TypeError("addressFetch: a GET has no body");
    if (init.headers !== undefined) throw new TypeError("addressFetch: no request headers");
    return encode(`${start}Accept: text/plain\r\nConnection: close\r\n\r\n`);
  }
  if (method !== "POST") throw new TypeError(`addressFetch: only GET or POST, not ${init.method}`);
  const body = init.body;
  if (!(body instanceof Uint8Array)) {
    throw new TypeError("addressFetch: a POST body must be a Uint8Array");
  }
  const type = contentType(init.headers);
  const head = encode(
    `${start}Content-Type: ${type}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
  );
  return concat([head, body]);
}

/**
 * A POST's Content-Type from `init.headers`: a plain object (a Headers or
 * an array of pairs could hide a second value) with no other header.
 */
function contentType(headers: HeadersInit | undefined): string {
  if (headers === undefined) return DEFAULT_TYPE;
  const proto = typeof headers === "object" && headers !== null
    ? Object.getPrototypeOf(headers)
    : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError("addressFetch: POST headers must be a plain object");
  }
  const entries = Object.entries(headers as Record<string, unknown>);
  for (const [name] of entries) {
    if (name.toLowerCase() !== "content-type") {
      throw new TypeError(`addressFetch: no request header but Content-Type, not "${clip(name)}"`);
    }
  }
  if (entries.length === 0) return DEFAULT_TYPE;
  if (entries.length > 1) throw new TypeError("addressFetch: Content-Type given twice");
  const value = entries[0][1];
  if (typeof value !== "string" || !MEDIA_TYPE.test(value)) {
    throw new TypeError(
      `addressFetch: not a media type: ${
        typeof value === "string" ? clip(JSON.stringify(value)) : typeof value
      }`,
    );
  }
  return value;
}

/**
 * The TLS connection to `url`'s host: resolved, connected address by
 * address, handshake done. Throws an AddressFetchError, or the signal's
 * reason once it aborts.
 */
async function open(
  url: URL,
  opts: AddressFetchOptions,
  signal: AbortSignal | undefined,
): Promise<Deno.TlsConn> {
  const hostname = url.hostname;
  const port = url.port ? Number(url.port) : 443;
  const literal = ipLiteral(hostname);
  let addresses: string[];
  if (literal) {
    addresses = [literal];
  } else {
    try {
      addresses = await unlessAborted(opts.resolve(hostname), signal);
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      throw new AddressFetchError(`does not resolve: ${message(e)}`, { cause: e });
    }
    if (addresses.length === 0) throw new AddressFetchError("does not resolve: no address");
  }

  const connect = opts.connect ??
    ((o: { hostname: string; port: number }) => Deno.connect({ ...o, signal }));
  let tcp: Deno.TcpConn | undefined;
  let at = "";
  let last: unknown;
  for (const address of addresses) {
    try {
      tcp = await unlessAborted(
        connect({ hostname: address, port }),
        signal,
        (late) => late.close(),
      );
      at = `${address} port ${port}`;
      break;
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      last = e;
    }
  }
  if (!tcp) {
    throw new AddressFetchError(
      `cannot connect to port ${port} at ${addresses.join(", ")}: ${message(last)}`,
      { cause: last },
    );
  }

  let tls: Deno.TlsConn;
  try {
    // Returns at once: the handshake runs in the background and handshake() awaits it.
    tls = await Deno.startTls(tcp, { hostname: literal ?? hostname, caCerts: opts.caCerts });
  } catch (e) {
    closer(tcp)(); // mostly consumed already, even when startTls throws (a malformed caCerts PEM)
    throw new AddressFetchError(`TLS at ${at}: ${message(e)}`, { cause: e });
  }
  const close = closer(tls);
  const onAbort = () => close();
  if (signal?.aborted) close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await tls.handshake();
    return tls;
  } catch (e) {
    close();
    if (signal?.aborted) throw signal.reason;
    throw new AddressFetchError(`TLS at ${at}: ${message(e)}`, { cause: e });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** The final response's status line and header fields. */
interface Head {
  status: number;
  statusText: string;
  headers: Headers;
}

/** Reads status lines and header sections until a final (non-1xx) response, within the limits. */
async function readHead(reader: Reader): Promise<Head> {
  let budget = MAX_HEAD;
  let lines = 0;
  const line = async () => {
    const text = await reader.line(budget);
    if (text === null) throw new AddressFetchError(`header section larger than ${MAX_HEAD} octets`);
    budget -= text.length + 2;
    return text;
  };
  for (let interim = 0;; interim++) {
    const statusLine = await line();
    const m = /^HTTP\/1\.[0-9] ([0-9]{3})(?: (.*))?$/.exec(statusLine);
    if (!m) throw new AddressFetchError(`not an HTTP/1.x status line: "${clip(statusLine)}"`);
    const status = Number(m[1]);
    const headers = new Headers();
    for (let field = await line(); field !== ""; field = await line()) {
      if (++lines > MAX_HEAD_LINES) {
        throw new AddressFetchError(`more than ${MAX_HEAD_LINES} header lines`);
      }
      if (field[0] === " " || field[0] === "\t") {
        throw new AddressFetchError(`folded header line: "${clip(field)}"`);
      }
      const colon = field.indexOf(":");
      const name = field.slice(0, colon);
      if (colon < 0 || !TOKEN.test(name)) {
        throw new AddressFetchError(`malformed header line: "${clip(field)}"`);
      }
      headers.append(name, field.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, ""));
    }
    if (status >= 100 && status < 200 && status !== 101) {
      if (interim >= MAX_INTERIM) {
        throw new AddressFetchError(`more than ${MAX_INTERIM} interim (1xx) responses`);
      }
      continue;
    }
    if (status < 200 || status > 599) {
      throw new AddressFetchError(`status ${status} is not a final HTTP status`);
    }
    return { status, statusText: m[2] ?? "", headers };
  }
}

/** Returns the next piece of the body, or null at its end; throws on a framing error. */
type NextPiece = () => Promise<Uint8Array | null>;

/** The body's framing (RFC 9112 6.3), checked before any of it is read. */
function bodyReader(reader: Reader, headers: Headers, maxBody: number): NextPiece {
  const te = headers.get("transfer-encoding");
  const cl = headers.get("content-length");
  if (te !== null && cl !== null) {
    throw new AddressFetchError("both Transfer-Encoding and Content-Length");
  }
  if (te !== null) {
    if (te.toLowerCase() !== "chunked") {
      throw new AddressFetchError(`unsupported Transfer-Encoding "${clip(te)}"`);
    }
    return chunkedReader(reader, maxBody);
  }
  if (cl !== null) return lengthReader(reader, contentLength(cl), maxBody);
  return () => reader.some(READ_SIZE);
}

/** The Content-Length (all its values, joined by Headers with ", ", must be one integer). */
function contentLength(value: string): number {
  const values = new Set(value.split(",").map((v) => v.trim()));
  if (values.size !== 1) throw new AddressFetchError(`conflicting Content-Length "${clip(value)}"`);
  const [only] = values;
  if (!/^[0-9]{1,15}$/.test(only)) {
    throw new AddressFetchError(`invalid Content-Length "${clip(value)}"`);
  }
  return Number(only);
}

/** A body of exactly `length` octets. */
function lengthReader(reader: Reader, length: number, maxBody: number): NextPiece {
  let left = length;
  return async () => {
    if (length > maxBody) throw new AddressFetchError(tooLarge(maxBody));
    if (left === 0) return null;
    const piece = await reader.some(Math.min(left, READ_SIZE));
    if (piece === null) {
      throw new AddressFetchError(`connection closed after ${length - left} of ${length} octets`);
    }
    left -= piece.length;
    return piece;
  };
}

/** A chunked body (RFC 9112 7.1): extensions ignored, trailers read and dropped. */
function chunkedReader(reader: Reader, maxBody: number): NextPiece {
  let left = 0;
  let total = 0;
  let started = false;
  let done = false;
  return async () => {
    if (done) return null;
    if (left === 0) {
      if (started && await reader.line(2) !== "") {
        throw new AddressFetchError("chunk data longer than its size");
      }
      started = true;
      const sizeLine = await reader.line(MAX_CHUNK_LINE);
      if (sizeLine === null) {
        throw new AddressFetchError(`chunk-size line longer than ${MAX_CHUNK_LINE} octets`);
      }
      const m = /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/.exec(sizeLine);
      if (!m) throw new AddressFetchError(`malformed chunk-size line "${clip(sizeLine)}"`);
      const hex = m[1].replace(/^0+(?=.)/, "");
      const size = hex.length > 12 ? Infinity : parseInt(hex, 16);
      if (size > maxBody - total) throw new AddressFetchError(tooLarge(maxBody));
      if (size === 0) {
        let budget = MAX_HEAD;
        for (let n = 0;; n++) {
          const trailer = await reader.line(budget);
          if (trailer === null) {
            throw new AddressFetchError(`trailer section larger than ${MAX_HEAD} octets`);
          }
          if (trailer === "") break;
          if (n >= MAX_HEAD_LINES) {
            throw new AddressFetchError(`more than ${MAX_HEAD_LINES} trailer lines`);
          }
          budget -= trailer.length + 2;
        }
        done = true;
        return null;
      }
      left = size;
      total += size;
    }
    const piece = await reader.some(Math.min(left, READ_SIZE));
    if (piece === null) throw new AddressFetchError("connection closed inside a chunk");
    left -= piece.length;
    return piece;
  };
}

/**
 * The Response body: pieces from `next` until its end, then the connection
 * closed; an error, a cancel, an abort or more than `maxBody` octets close
 * it too. An abort during a read closes the connection and the read's
 * failure errors the stream, so no read is left running.
 */
function bodyStream(
  next: NextPiece,
  close: () => void,
  maxBody: number,
  host: string,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  let delivered = 0;
  let reading: Promise<void> | null = null;
  let over = false;
  let onAbort = () => {};
  const finish = () => {
    over = true;
    signal?.removeEventListener("abort", onAbort);
    close();
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      onAbort = () => {
        if (reading) {
          close();
        } else {
          finish();
          controller.error(signal!.reason);
        }
      };
      signal?.addEventListener("abort", onAbort, { once: true });
    },
    pull(controller) {
      reading = (async () => {
        try {
          const piece = await next();
          if (over) return;
          if (piece === null) {
            finish();
            controller.close();
            return;
          }
          delivered += piece.length;
          if (delivered > maxBody) throw new AddressFetchError(tooLarge(maxBody));
          controller.enqueue(piece);
        } catch (e) {
          if (over) return;
          finish();
          controller.error(signal?.aborted ? signal.reason : failed("body read failed", host, e));
        } finally {
          reading = null;
        }
      })();
      return reading;
    },
    async cancel() {
      finish();
      await reading;
    },
  }, { highWaterMark: 0 });
}

/** Buffered reads from a connection. */
class Reader {
  #conn: Deno.Conn;
  #buf: Uint8Array = new Uint8Array(0);
  /** How much of #buf is known to hold no line end and no control character. */
  #scanned = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Reads once more into the buffer; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(READ_SIZE);
    const n = await this.#conn.read(chunk);
    if (n === null) return false;
    const got = chunk.subarray(0, n);
    this.#buf = this.#buf.length ? concat([this.#buf, got]) : got;
    return true;
  }

  /**
   * The next CRLF-ended line without its CRLF, one character per octet;
   * null when no line ends within `limit` octets (CRLF included). A
   * control character other than HTAB (a lone CR or LF among them) or
   * the end of the stream is an error, found as soon as it is read.
   */
  async line(limit: number): Promise<string | null> {
    for (;;) {
      const end = this.#lineEnd();
      if (end >= 0 ? end + 2 > limit : this.#buf.length >= limit) return null;
      if (end >= 0) {
        const bytes = this.#buf.subarray(0, end);
        this.#buf = this.#buf.subarray(end + 2);
        this.#scanned = 0;
        return String.fromCharCode(...bytes);
      }
      if (!(await this.#fill())) throw new AddressFetchError("connection closed inside a line");
    }
  }

  /** Where the first line's CRLF starts, or -1 if it has not come yet. */
  #lineEnd(): number {
    const buf = this.#buf;
    for (let i = this.#scanned; i < buf.length; i++) {
      const b = buf[i];
      if ((b >= 0x20 && b !== 0x7f) || b === 0x09) continue;
      if (b === 0x0d && i + 1 === buf.length) {
        this.#scanned = i;
        return -1;
      }
      if (b === 0x0d && buf[i + 1] === 0x0a) return i;
      throw new AddressFetchError(
        `control character 0x${b.toString(16).padStart(2, "0")} in a response line`,
      );
    }
    this.#scanned = buf.length;
    return -1;
  }

  /** At most `max` (> 0) octets, at least one; null at the end of the stream. */
  async some(max: number): Promise<Uint8Array | null> {
    if (this.#buf.length === 0 && !(await this.#fill())) return null;
    const piece = this.#buf.subarray(0, max);
    this.#buf = this.#buf.subarray(piece.length);
    this.#scanned = 0;
    return piece;
  }
}

/** `p`'s outcome, or the signal's reason as soon as it aborts; a result that comes later goes to `late`. */
function unlessAborted<T>(
  p: Promise<T>,
  signal: AbortSignal | undefined,
  late: (v: T) => void = () => {},
): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
    p.then((v) => {
      signal.removeEventListener("abort", onAbort);
      if (signal.aborted) late(v);
      else resolve(v);
    }, (e) => {
      signal.removeEventListener("abort", onAbort);
      reject(e);
    });
  });
}

/** Writes all of `bytes` (a write may take only part). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** Closes `conn` once; closing again, or after the peer did, is no error. */
function closer(conn: Deno.Conn): () => void {
  let closed = false;
  return () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
  };
}

/**
 * A fetch-style TypeError; its cause says what went wrong at `host`, and
 * has the underlying error, if any, as its own cause.
 */
function failed(what: string, host: string, e: unknown): TypeError {
  const under = e instanceof AddressFetchError ? e.cause : e;
  return new TypeError(what, {
    cause: new AddressFetchError(`${host}: ${message(e)}`, { cause: under }),
  });
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function tooLarge(maxBody: number): string {
  return `body larger than ${maxBody} octets`;
}

/** A server's text, shortened for an error message. */
function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}...` : s;
}
