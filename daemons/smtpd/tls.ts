/**
 * Server-side TLS for smtpd: STARTTLS (RFC 3207) and wrapper mode (port
 * 465). The handshake runs `node:tls` TLSSocket (isServer) over the
 * accepted Deno connection, wrapped in a node Duplex; afterwards the
 * session reads and writes through the TLS socket instead of the raw
 * connection (main.ts swaps its read/write functions). node:tls is
 * imported only when TLS is configured, so a smtpd without TLS pays
 * nothing for it.
 *
 * Also the text Postfix writes about a TLS session: the Received: header
 * clause (smtpd_tls_received_header) and the "Anonymous TLS connection
 * established" log line (smtpd_tls_loglevel >= 1). Client certificates are
 * never requested (lib/tls/ccert.ts says why they cannot be), so every TLS
 * connection is "Anonymous" and the header says "(No client certificate
 * requested)". The key-exchange group and signature that Postfix adds to
 * both are not exposed by Deno's TLS library and are left out, as Postfix
 * does when it does not know them.
 *
 * What the settings mean and what can be honoured: lib/tls/policy.ts;
 * where the key comes from: lib/tls/material.ts.
 */
import { connDuplex } from "../../lib/tls/duplex.ts";
import type { TLSSocket as TLSSocketType } from "node:tls";
import { authAllowed, type SmtpdTlsPolicy, tlsAuthOnly } from "../../lib/tls/policy.ts";
import type { Config } from "../../lib/config/mod.ts";
import type { TlsMaterial } from "../../lib/tls/material.ts";
import type { SessionDeps, SessionTls } from "./session.ts";

export { authAllowed };

/**
 * For the AUTH command and its EHLO keyword: whether AUTH may be offered
 * and accepted now. smtpd_tls_auth_only (implied by
 * smtpd_tls_security_level = encrypt, smtpd_enforce_tls and wrapper mode)
 * keeps AUTH away from a session without TLS; with TLS active it is always
 * allowed. Works whether or not TLS is configured (with auth only and no
 * TLS, AUTH is never offered, as in Postfix).
 */
export function authAllowedNow(config: Config, tls: TlsInfo | null): boolean {
  return tls !== null || !tlsAuthOnly(config);
}

/** The TLS session a client has, once the handshake is done. */
export interface TlsInfo {
  /** "TLSv1.3". */
  protocol: string;
  /** OpenSSL's name: "TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256". */
  cipher: string;
  /** Secret bits used / bits of the algorithm, as Postfix logs them (256/256). */
  bits: number;
  algBits: number;
  /** The client resumed an earlier session (not counted as a new TLS session). */
  reused?: boolean;
}

/** A byte stream the session reads and writes (plaintext or TLS). */
export interface ByteChannel {
  /** Next chunk, null at end of stream. */
  read(): Promise<Uint8Array | null>;
  write(bytes: Uint8Array): Promise<void>;
}

/** The handshake did not finish within smtpd_starttls_timeout. */
export class TlsTimeout extends Error {
  override readonly name = "TlsTimeout";
}

/** The handshake failed (the message is the TLS library's); `lost`: the client went away. */
export class TlsHandshakeError extends Error {
  override readonly name = "TlsHandshakeError";
  constructor(message: string, readonly lost = false) {
    super(message);
  }
}

/** Key bits of a cipher, from its name (all offered suites are AEAD: used = algorithm bits). */
export function cipherBits(cipher: string): number {
  if (/AES_?128|AES128/i.test(cipher)) return 128;
  if (/AES_?256|AES256|CHACHA20/i.test(cipher)) return 256;
  return 0;
}

/** "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)", as Postfix writes it. */
export function tlsSummary(t: TlsInfo): string {
  return `${t.protocol} with cipher ${t.cipher} (${t.bits}/${t.algBits} bits)`;
}

/** The Received: header lines Postfix adds with smtpd_tls_received_header (each "\t(...)\r\n"). */
export function receivedTlsClause(t: TlsInfo): string {
  return `\t(using ${tlsSummary(t)})\r\n\t(No client certificate requested)\r\n`;
}

/** The smtpd_tls_loglevel >= 1 line after a handshake. */
export function establishedLine(client: string, t: TlsInfo): string {
  return `Anonymous TLS connection established from ${client}: ${tlsSummary(t)}`;
}

/**
 * The TLS side of a smtpd: a server context built once per process from
 * the material master handed over, and the handshake over one connection.
 */
export class TlsServer {
  private constructor(
    readonly policy: SmtpdTlsPolicy,
    private readonly tls: typeof import("node:tls"),
    private readonly Duplex: typeof import("node:stream").Duplex,
    private readonly context: import("node:tls").SecureContext,
  ) {}

  /** Builds the server context (imports node:tls). */
  static async create(policy: SmtpdTlsPolicy, material: TlsMaterial): Promise<TlsServer> {
    const tls = await import("node:tls");
    const { Duplex } = await import("node:stream");
    const context = tls.createSecureContext({
      key: material.key,
      cert: material.certs,
      minVersion: policy.minVersion,
      maxVersion: policy.maxVersion,
    });
    return new TlsServer(policy, tls, Duplex, context);
  }

  /**
   * Runs the server handshake over `conn` (nothing of it may be buffered
   * elsewhere, except `prefix`: bytes already read from it, such as those
   * after a PROXY header) within smtpd_starttls_timeout; the channel then carries the
   * session. Throws TlsTimeout or TlsHandshakeError; the caller closes conn.
   */
  async handshake(
    conn: Deno.Conn,
    prefix: Uint8Array | null = null,
  ): Promise<{ channel: ByteChannel; info: TlsInfo; close: () => void }> {
    // The client's end of stream: before "secure" the handshake can never finish.
    const eof = { seen: false, onEof: () => {} };
    const duplex = connDuplex(this.Duplex, conn, { prefix, eof });
    const socket: TLSSocketType = new this.tls.TLSSocket(
      duplex,
      {
        isServer: true,
        secureContext: this.context,
        minVersion: this.policy.minVersion,
        maxVersion: this.policy.maxVersion,
      } as import("node:tls").TLSSocketOptions,
    );
    // Without a listener an 'error' event would end the whole daemon.
    let failure: Error | null = null;
    socket.on("error", (e: Error) => failure ??= e);
    duplex.on("error", () => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(
          () => reject(new TlsTimeout("TLS handshake timeout")),
          this.policy.handshakeTimeoutMs,
        );
        socket.once("secure", () => resolve());
        eof.onEof = () => reject(new TlsHandshakeError("lost connection", true));
        socket.once("error", (e: Error) => reject(new TlsHandshakeError(e.message, eof.seen)));
        socket.once("close", () => reject(new TlsHandshakeError("connection closed", true)));
      });
    } catch (e) {
      socket.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    const c = socket.getCipher();
    const bits = cipherBits(c.name);
    const info: TlsInfo = {
      protocol: socket.getProtocol() ?? c.version,
      cipher: c.name,
      bits,
      algBits: bits,
      reused: socket.isSessionReused(),
    };
    const chunks = socket[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    const channel: ByteChannel = {
      read: async () => {
        if (failure) return null;
        try {
          const r = await chunks.next();
          return r.done ? null : new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.length);
        } catch {
          return null; // a TLS alert or a reset: the end of this stream
        }
      },
      write: (bytes) =>
        new Promise<void>((resolve, reject) => {
          if (failure || socket.destroyed) {
            reject(failure ?? new Error("TLS connection closed"));
            return;
          }
          socket.write(bytes, (e?: Error | null) => e ? reject(e) : resolve());
        }),
    };
    return { channel, info, close: () => socket.destroy() };
  }
}

/** Plaintext read sizes: an idle connection pins the small buffer only. */
const READ_SMALL = 1024;
const READ_LARGE = 16 * 1024;

/**
 * A session's I/O over an accepted connection: plaintext until STARTTLS
 * (or wrapper mode) swaps in the TLS socket. `policy` null: no TLS;
 * `server` null: TLS wanted but no usable certificate.
 */
export function connectionIo(
  conn: Deno.Conn,
  policy: SmtpdTlsPolicy | null,
  server: TlsServer | null,
): {
  io: Pick<SessionDeps, "read" | "write" | "tls">;
  close: () => void;
  /** Gives bytes read too early back: the next read (or the TLS handshake) gets them first. */
  unread: (bytes: Uint8Array) => void;
} {
  let pushedBack: Uint8Array | null = null;
  let size = READ_SMALL;
  let channel: ByteChannel = {
    read: async () => {
      if (pushedBack) {
        const b = pushedBack;
        pushedBack = null;
        return b;
      }
      // A fresh buffer per read: decoded DATA may be views into it. Small
      // while the client is idle or sends commands, large while it streams.
      const buf = new Uint8Array(size);
      const n = await conn.read(buf);
      if (n === null) return null;
      size = n === buf.length ? READ_LARGE : READ_SMALL;
      return buf.subarray(0, n);
    },
    // No deadline of its own: the session gives up after smtpd_timeout,
    // and the host closing the connection settles a write that is stuck.
    write: async (b) => {
      let off = 0;
      while (off < b.length) off += await conn.write(b.subarray(off));
    },
  };
  let tls: SessionTls | undefined;
  let closeTls = () => {};
  if (policy) {
    tls = {
      policy,
      start: server
        ? async () => {
          const prefix = pushedBack;
          pushedBack = null;
          const r = await server.handshake(conn, prefix);
          channel = r.channel;
          closeTls = r.close;
          return r.info;
        }
        : null,
    };
  }
  return {
    io: { read: () => channel.read(), write: (b) => channel.write(b), tls },
    unread: (bytes) => {
      if (bytes.length) pushedBack = bytes;
    },
    // Settles a read or write still pending (a client that stopped reading).
    close: () => {
      closeTls();
      try {
        conn.close();
      } catch {
        // already closed
      }
    },
  };
}
