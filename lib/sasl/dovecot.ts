/**
 * The client side of Dovecot's authentication protocol (the "auth-client"
 * socket, protocol 1.x), as Postfix's xsasl_dovecot_server speaks it:
 * handshake (we send VERSION and CPID; Dovecot answers VERSION, MECH...,
 * SPID, CUID, COOKIE, DONE), then per exchange `AUTH id mech
 * service=smtp nologin lip= rip= [secured] [resp=]`, `CONT id data`, and
 * Dovecot's OK / CONT / FAIL replies.
 *
 * One connection per smtpd process, shared by its sessions: requests carry
 * ids and replies are dispatched by id. A lost connection fails the
 * exchanges in progress as temporary ("Connection lost to authentication
 * server") and the next exchange connects again. Every value we send is
 * checked to hold no TAB or LF (client responses are base64 by then; the
 * caller checks). Replies longer than {@link MAX_LINE} end the connection.
 *
 * What it does not do: the master/userdb sockets (a MECH line is required
 * before SPID, as Postfix checks, so pointing it at auth-master fails
 * clearly), REQUEST/cookie-based login handover, mechanisms' own logic
 * (Dovecot runs them).
 *
 * @module
 */
import {
  printable,
  type SaslBackend,
  type SaslClientInfo,
  type SaslExchange,
  type SaslMechanism,
  type SaslStep,
} from "./mod.ts";

/** Longest line accepted from Dovecot. */
export const MAX_LINE = 65536;
/** How long a reply may take (Dovecot's own failure delay is 2 s). */
const REPLY_TIMEOUT_MS = 60_000;

/** Options for {@link DovecotAuthClient}. */
export interface DovecotOptions {
  /** Opens a connection to the auth socket (unix or TCP). */
  connect: () => Promise<Deno.Conn>;
  /** The socket as configured (smtpd_sasl_path), for warnings. @default "" */
  name?: string;
  /** Logs a warning ("SASL: ..."). */
  warn: (msg: string) => void;
  /** Our process id for CPID. @default Deno.pid */
  pid?: number;
  /** @default 60000 */
  replyTimeoutMs?: number;
}

/** A reply line of one request, split at TABs after the id. */
interface Reply {
  cmd: "OK" | "CONT" | "FAIL";
  args: string[];
}

const enc = new TextEncoder();

/** A handshake Dovecot's side got wrong (warned as Postfix does: "SASL: reason"). */
class HandshakeError extends Error {
  override readonly name = "HandshakeError";
}

function clean(v: string): string {
  return v.replace(/[\t\r\n\0]/g, "");
}

class Connection {
  readonly mechs: SaslMechanism[] = [];
  readonly waiters = new Map<number, (r: Reply | Error) => void>();
  closed = false;
  #buf = "";

  constructor(readonly conn: Deno.Conn, readonly onClose: () => void) {}

  async handshake(pid: number, timeoutMs: number): Promise<void> {
    await this.write(`VERSION\t1\t1\nCPID\t${pid}\n`);
    let haveMech = false;
    for (;;) {
      const line = await this.line(timeoutMs);
      if (line === null) throw new Error("connection closed during handshake");
      const f = line.split("\t");
      if (f[0] === "VERSION") {
        if (f[1] !== "1") throw new HandshakeError(`Protocol version mismatch (${f[1]} vs. 1)`);
      } else if (f[0] === "MECH" && f.length >= 2) {
        haveMech = true;
        const props = f.slice(2).map((p) => p.toLowerCase());
        if (!props.includes("private")) this.mechs.push({ name: f[1], props });
      } else if (f[0] === "SPID") {
        if (!haveMech) {
          throw new HandshakeError(
            "Connected to wrong auth socket (auth-master instead of auth-client)",
          );
        }
      } else if (f[0] === "DONE") {
        return;
      }
    }
  }

  write(text: string): Promise<void> {
    const bytes = enc.encode(text);
    return (async () => {
      let off = 0;
      while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
    })();
  }

  /** The next line, or null at end of stream. */
  async line(timeoutMs: number): Promise<string | null> {
    const buf = new Uint8Array(8192);
    const dec = new TextDecoder();
    for (;;) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const l = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        return l;
      }
      if (this.#buf.length > MAX_LINE) throw new Error("reply line too long");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.conn.read(buf),
        new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error("timeout")), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
      if (n === null) return null;
      this.#buf += dec.decode(buf.subarray(0, n), { stream: true });
    }
  }

  /** Reads replies and hands each to its request until the connection ends. */
  async pump(): Promise<void> {
    try {
      for (;;) {
        const line = await this.line(24 * 3600_000);
        if (line === null) break;
        const [cmd, id, ...args] = line.split("\t");
        if (cmd !== "OK" && cmd !== "CONT" && cmd !== "FAIL") continue;
        const w = this.waiters.get(Number(id));
        if (!w) continue; // a reply to a request given up on
        this.waiters.delete(Number(id));
        w({ cmd, args });
      }
    } catch {
      // a broken or hostile connection: fail what waits, reconnect next time
    } finally {
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    for (const w of this.waiters.values()) w(new Error("Connection lost to authentication server"));
    this.waiters.clear();
    this.onClose();
  }
}

/** A {@link SaslBackend} that asks Dovecot. */
export class DovecotAuthClient implements SaslBackend {
  #conn: Promise<Connection> | null = null;
  #nextId = 0;

  constructor(readonly opts: DovecotOptions) {}

  #connection(): Promise<Connection> {
    if (this.#conn) return this.#conn;
    const p = (async () => {
      const raw = await this.opts.connect();
      const c = new Connection(raw, () => {
        if (this.#conn === p) this.#conn = null;
      });
      try {
        await c.handshake(this.opts.pid ?? Deno.pid, this.opts.replyTimeoutMs ?? REPLY_TIMEOUT_MS);
      } catch (e) {
        c.close();
        throw e;
      }
      c.pump();
      return c;
    })();
    this.#conn = p;
    p.catch((e) => {
      if (this.#conn === p) this.#conn = null;
      const why = (e as Error).message;
      this.opts.warn(
        e instanceof HandshakeError
          ? `SASL: ${why}`
          : `SASL: Connect to Dovecot auth socket '${this.opts.name ?? ""}' failed: ${why}`,
      );
    });
    return p;
  }

  async mechanisms(): Promise<SaslMechanism[]> {
    return (await this.#connection()).mechs;
  }

  start(mechanism: string, info: SaslClientInfo): SaslExchange {
    let id = 0;
    let conn: Connection | null = null;
    const request = async (line: (id: number) => string): Promise<SaslStep> => {
      let c: Connection;
      try {
        c = conn ?? await this.#connection();
      } catch {
        return { status: "temp", reason: "Can't connect to authentication server" };
      }
      if (c.closed) return { status: "temp", reason: "Connection lost to authentication server" };
      conn = c;
      if (id === 0) id = this.#nextId = (this.#nextId % 0x7fffffff) + 1;
      const reply = new Promise<Reply | Error>((resolve) => c.waiters.set(id, resolve));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<Error>((resolve) => {
        timer = setTimeout(
          () => resolve(new Error("Authentication server timed out")),
          this.opts.replyTimeoutMs ?? REPLY_TIMEOUT_MS,
        );
      });
      try {
        await c.write(line(id));
      } catch {
        c.close();
        clearTimeout(timer);
        return { status: "temp", reason: "Connection lost to authentication server" };
      }
      const r = await Promise.race([reply, timeout]).finally(() => clearTimeout(timer));
      if (r instanceof Error) {
        c.waiters.delete(id);
        return { status: "temp", reason: r.message };
      }
      return interpret(r, this.opts.warn);
    };
    return {
      first: (initial) =>
        request((n) =>
          `AUTH\t${n}\t${clean(mechanism)}\tservice=${clean(info.service)}\tnologin` +
          `\tlip=${clean(info.serverAddr)}\trip=${clean(info.clientAddr)}` +
          (info.secured ? "\tsecured" : "") +
          (initial !== null ? `\tresp=${clean(initial)}` : "") + "\n"
        ),
      next: (response) => request((n) => `CONT\t${n}\t${clean(response)}\n`),
      abort: () => {
        if (conn && id) conn.waiters.delete(id);
      },
    };
  }

  close(): void {
    this.#conn?.then((c) => c.close(), () => {});
    this.#conn = null;
  }
}

/** One reply as a step; Postfix's xsasl_dovecot_handle_reply. */
function interpret(r: Reply, warn: (msg: string) => void): SaslStep {
  if (r.cmd === "CONT") {
    if (r.args.length === 0) {
      warn("missing Dovecot server CONT reply field");
      return { status: "fail", reason: "Authentication backend error" };
    }
    return { status: "more", challenge: r.args[0] };
  }
  let user: string | undefined;
  let reason = "";
  for (const a of r.args) {
    if (a.startsWith("user=")) user = printable(a.slice(5));
    else if (a.startsWith("reason=")) reason = printable(a.slice(7));
  }
  if (r.cmd === "OK") {
    if (user === undefined) {
      warn("missing Dovecot server OK username field");
      return { status: "fail", reason: "Authentication backend error" };
    }
    return { status: "ok", username: user };
  }
  return { status: "fail", reason, ...(user !== undefined ? { username: user } : {}) };
}
