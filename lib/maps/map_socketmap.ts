/**
 * `socketmap:inet:host:port:name` and `socketmap:unix:/path:name`: lookups
 * from a socketmap server (Sendmail's protocol), as Postfix's dict_sockmap
 * (socketmap_table(5)). The request is the netstring `name SPACE key`; the
 * reply a netstring `OK data`, `NOTFOUND `, `TEMP reason`, `TIMEOUT reason`
 * or `PERM reason`, at most 100000 bytes.
 *
 * As Postfix: OK is the value, NOTFOUND is "not found"; TEMP, TIMEOUT and
 * anything unknown are DictError "retry", PERM is "config" (each with
 * Postfix's warning); a connection the server closed is reopened once per
 * lookup; an idle connection is closed after 10 seconds and any after 100;
 * every step has a 100-second deadline. A pattern table (only full keys);
 * keys are sent as given (not folded). Unlike Postfix, tables naming the
 * same server do not share one connection (each table has its own).
 *
 * @module
 */
import { type DictBackend, DictError, type DictOpener } from "./dict.ts";
import { type Endpoint, NetError, NetStream, splitHostPort } from "./_net.ts";

/** Postfix's socketmap limits. */
export interface SocketmapOptions {
  /** Connect, read and write deadline. @default 100000 */
  timeoutMs?: number;
  /** Largest reply payload. @default 100000 */
  maxReply?: number;
  /** Close a connection idle this long. @default 10000 */
  maxIdleMs?: number;
  /** Close a connection this old. @default 100000 */
  maxTtlMs?: number;
}

/** The endpoint and the map name of `inet:host:port:name` / `unix:/path:name`. */
export function parseSocketmapName(name: string): { endpoint: Endpoint; map: string } {
  const t = name.trim();
  const colon = t.lastIndexOf(":");
  const bad = (why: string) =>
    new DictError(
      `socketmap:${t}: ${why}; need "socketmap:inet:host:port:name" or ` +
        `"socketmap:unix:/path:name"`,
      "config",
    );
  if (colon < 0) throw bad("socketmap requires server:socketmap argument");
  const server = t.slice(0, colon);
  const map = t.slice(colon + 1);
  if (map === "") throw bad("empty socketmap name");
  if (server.startsWith("unix:")) {
    const path = server.slice(5);
    if (path === "") throw bad("empty socket path");
    return { endpoint: { transport: "unix", path }, map };
  }
  if (server.startsWith("inet:")) {
    const hp = splitHostPort(server.slice(5));
    if (!hp) throw bad(`bad host:port "${server.slice(5)}"`);
    return { endpoint: { transport: "tcp", ...hp }, map };
  }
  throw bad(`unknown server type in "${server}"`);
}

const enc = new TextEncoder();

/** A netstring: `length:bytes,`. */
export function netstring(data: Uint8Array): Uint8Array {
  const head = enc.encode(`${data.length}:`);
  const out = new Uint8Array(head.length + data.length + 1);
  out.set(head);
  out.set(data, head.length);
  out[out.length - 1] = 0x2c;
  return out;
}

async function readNetstring(s: NetStream, max: number): Promise<Uint8Array> {
  let len = 0;
  let digits = 0;
  for (;;) {
    const [c] = await s.readBytes(1);
    if (c === 0x3a && digits > 0) break;
    if (c < 48 || c > 57 || digits >= 10) throw new NetError("netstring format error");
    len = len * 10 + (c - 48);
    digits++;
  }
  if (len > max) throw new NetError("netstring size exceeds limit");
  const data = await s.readBytes(len);
  const [comma] = await s.readBytes(1);
  if (comma !== 0x2c) throw new NetError("netstring format error");
  return data;
}

function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, "?").slice(0, 200);
}

/** Opens socketmap tables with Postfix's limits, or others for tests. */
export function socketmapOpener(limits: SocketmapOptions = {}): DictOpener {
  const timeoutMs = limits.timeoutMs ?? 100_000;
  const maxReply = limits.maxReply ?? 100_000;
  const maxIdle = limits.maxIdleMs ?? 10_000;
  const maxTtl = limits.maxTtlMs ?? 100_000;
  return (name, opts) => {
    let parsed;
    try {
      parsed = parseSocketmapName(name);
    } catch (e) {
      return Promise.reject(e);
    }
    const { endpoint, map } = parsed;
    const where = `socketmap:${name}`;
    let stream: NetStream | undefined;
    let lastUse = 0;
    const drop = () => {
      stream?.close();
      stream = undefined;
    };
    const lookup = async (key: string): Promise<string | undefined> => {
      const now = Date.now();
      if (stream && (now - lastUse > maxIdle || now - stream.since > maxTtl)) drop();
      let reply: string | undefined;
      for (let attempt = 0; reply === undefined; attempt++) {
        try {
          stream ??= await NetStream.connect(endpoint, timeoutMs);
        } catch (e) {
          const m = `table ${where} lookup error: ${(e as Error).message}`;
          opts.warn(m);
          throw new DictError(m, "retry");
        }
        try {
          await stream.write(netstring(enc.encode(`${map} ${key}`)));
          reply = new TextDecoder().decode(await readNetstring(stream, maxReply));
        } catch (e) {
          drop();
          // A server that closed an idle connection gets one more try.
          if (attempt === 0 && e instanceof NetError && e.eof) continue;
          const m = `table ${where} lookup error: ${(e as Error).message}`;
          opts.warn(m);
          throw new DictError(m, "retry");
        }
      }
      lastUse = Date.now();
      const sp = reply.indexOf(" ");
      const status = sp < 0 ? reply : reply.slice(0, sp);
      const payload = sp < 0 ? undefined : reply.slice(sp + 1);
      if (status === "OK") return payload;
      if (status === "NOTFOUND") return undefined;
      const [cls, kind] = status === "TEMP"
        ? ["temporary", "retry"] as const
        : status === "TIMEOUT"
        ? ["timeout", "retry"] as const
        : status === "PERM"
        ? ["permanent", "config"] as const
        : ["unknown", "retry"] as const;
      const why = (payload ?? "").trimStart();
      const m = `${where} socketmap server ${cls} error${why ? ": " + printable(why) : ""}`;
      opts.warn(m);
      throw new DictError(m, kind);
    };
    return Promise.resolve({
      type: "socketmap",
      name,
      pattern: true,
      lookup,
      close: () => {
        drop();
        return Promise.resolve();
      },
    });
  };
}

/** `socketmap:` backend: the server's host:port, or its socket for read and write. */
export const socketmapBackend: DictBackend = {
  open: socketmapOpener(),
  grants: (name) => {
    try {
      const { endpoint: ep } = parseSocketmapName(name);
      if (ep.transport === "unix") return Promise.resolve({ read: [ep.path], write: [ep.path] });
      const host = ep.hostname.includes(":") ? `[${ep.hostname}]` : ep.hostname;
      return Promise.resolve({ net: [`${host}:${ep.port}`] });
    } catch (e) {
      return Promise.reject(e);
    }
  },
};
