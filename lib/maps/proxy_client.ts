/**
 * The client side of proxymap: a {@link Dict} whose lookups are answered by
 * the proxymap daemon over its socket, as Postfix's dict_proxy. Used for
 * tables written `proxy:type:name` and for every table that needs the
 * network (SQL, socketmap, tcp): the daemon that asks needs no file,
 * password or network permission for the table, only the proxymap socket.
 *
 * One connection per daemon carries all lookups, pipelined: requests are
 * written as they come and answered in order. A broken connection fails
 * the lookups in flight with a "retry" DictError and the next lookup
 * reconnects.
 *
 * Protocol (lib/ipc JSON frames):
 *   client: {op:"lookup", table:"type:name", key, fold}
 *   proxymap: {status:"ok", value} | {status:"notfound"} |
 *             {status:"retry"|"config", text}
 *
 * @module
 */
import { type IpcConn, ipcConnect } from "../ipc/mod.ts";
import { type Dict, DictError, parseMapSpec } from "./dict.ts";

/** proxymap's answer to one lookup. */
export type ProxyReply =
  | { status: "ok"; value: string }
  | { status: "notfound" }
  | { status: "retry" | "config"; text: string };

/** One lookup request. */
export interface ProxyRequest {
  op: "lookup";
  table: string;
  key: string;
  fold: boolean;
}

/** Tables answered by one proxymap socket. */
export class ProxyClient {
  #conn: IpcConn | null = null;
  #connecting: Promise<IpcConn> | null = null;
  #waiting: { resolve: (r: ProxyReply) => void; reject: (e: Error) => void }[] = [];

  /** @param socket the proxymap socket this daemon may use */
  constructor(readonly socket: string, readonly timeoutMs = 60_000) {}

  /** A Dict for `type:name` (without `proxy:`) answered by proxymap. */
  dict(spec: string, fold: boolean): Dict {
    const { type, name } = parseMapSpec(spec);
    const table = `${type}:${name}`;
    return {
      type,
      name,
      // A proxied table may be a pattern table; proxymap answers partial
      // keys for fixed tables only, as the Dict it opened says. Asking is
      // harmless: a pattern table gets the key it would get anyway.
      pattern: PATTERN_TYPES.has(type),
      lookup: async (key) => {
        const r = await this.#ask({ op: "lookup", table, key, fold });
        if (r.status === "ok") return r.value;
        if (r.status === "notfound") return undefined;
        throw new DictError(`proxymap: ${r.text}`, r.status);
      },
      close: () => Promise.resolve(),
    };
  }

  async #ask(req: ProxyRequest): Promise<ProxyReply> {
    const conn = await this.#connect();
    const reply = new Promise<ProxyReply>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
    try {
      await conn.send(req);
    } catch (e) {
      this.#fail(conn, e as Error);
    }
    return await reply;
  }

  async #connect(): Promise<IpcConn> {
    if (this.#conn) return this.#conn;
    this.#connecting ??= (async () => {
      // proxymap may be (re)starting (master starts every daemon at once):
      // it gets CONNECT_RETRY_MS to come up before a lookup fails.
      try {
        const conn = await ipcConnect(this.socket, {
          timeoutMs: this.timeoutMs,
          retryMs: CONNECT_RETRY_MS,
        });
        this.#conn = conn;
        this.#read(conn);
        return conn;
      } catch (e) {
        throw new DictError(`proxymap: connect ${this.socket}: ${(e as Error).message}`);
      } finally {
        this.#connecting = null;
      }
    })();
    return await this.#connecting;
  }

  async #read(conn: IpcConn): Promise<void> {
    try {
      for (;;) {
        const reply = await conn.recvMsg<ProxyReply>();
        const w = this.#waiting.shift();
        if (!w) throw new Error("unexpected reply");
        w.resolve(reply);
      }
    } catch (e) {
      this.#fail(conn, e as Error);
    }
  }

  #fail(conn: IpcConn, e: Error): void {
    if (this.#conn === conn) this.#conn = null;
    conn.close();
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.reject(new DictError(`proxymap: ${e.message}`));
  }

  /** Closes the connection; lookups in flight fail. */
  close(): void {
    if (this.#conn) this.#fail(this.#conn, new Error("closed"));
  }
}

/** How long a lookup waits for proxymap's socket (as cleanup's clients wait for cleanup). */
const CONNECT_RETRY_MS = 5000;

/** Types whose tables match on patterns (they get full keys only). */
const PATTERN_TYPES = new Set(["regexp", "pcre", "cidr", "fail"]);
