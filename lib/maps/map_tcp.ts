/**
 * `tcp:host:port`: lookups from a TCP server, as Postfix's dict_tcp
 * (tcp_table(5)). The request is `get SPACE key NEWLINE`, the reply one
 * line `200 data`, `500 text` (not found) or `400 text` (try again), both
 * with `%XX` encoding of "%", white space and non-printable bytes (UTF-8
 * bytes are encoded too, as Postfix's hex_quote). Replies are limited to
 * 4096 bytes with the newline, every step to 100 seconds.
 *
 * As Postfix: the connection stays open between lookups and is closed
 * after a 400 or a malformed reply; a failed connect, an early EOF or an
 * over-long reply is retried up to 10 times one second apart, then the
 * lookup fails with DictError "retry". A pattern table (only full keys),
 * keys are sent as given (not folded).
 *
 * @module
 */
import { type DictBackend, DictError, type DictOpener } from "./dict.ts";
import { NetError, NetStream, splitHostPort } from "./_net.ts";

/** Postfix's limits for tcp: tables. */
export interface TcpOptions {
  /** Attempts before giving up. @default 10 */
  maxTries?: number;
  /** Pause between attempts. @default 1000 */
  retryDelayMs?: number;
  /** Connect, read and write deadline. @default 100000 */
  timeoutMs?: number;
}

const MAX_REPLY = 4096;

/** Postfix's hex_quote: "%", white space and bytes outside 0x21..0x7e become %XX. */
export function hexQuote(text: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(text)) {
    out += b > 0x20 && b < 0x7f && b !== 0x25
      ? String.fromCharCode(b)
      : "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Postfix's hex_unquote: undefined when a "%" is not followed by two hex digits. */
export function hexUnquote(text: Uint8Array): Uint8Array | undefined {
  const out: number[] = [];
  const hex = (c: number) =>
    c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== 0x25) {
      out.push(text[i]);
      continue;
    }
    const h = hex(text[i + 1] ?? 0), l = hex(text[i + 2] ?? 0);
    if (h < 0 || l < 0) return undefined;
    out.push(h * 16 + l);
    i += 2;
  }
  return new Uint8Array(out);
}

function printable(b: Uint8Array): string {
  return Array.from(
    b.subarray(0, 100),
    (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : "_"),
  )
    .join("");
}

/** Opens `tcp:host:port` with Postfix's limits, or others for tests. */
export function tcpOpener(limits: TcpOptions = {}): DictOpener {
  const maxTries = limits.maxTries ?? 10;
  const delay = limits.retryDelayMs ?? 1000;
  const timeoutMs = limits.timeoutMs ?? 100_000;
  return (name, opts) => {
    const ep = splitHostPort(name.trim());
    if (!ep) {
      return Promise.reject(
        new DictError(`tcp:${name}: need "tcp:host:port" (a numeric port)`, "config"),
      );
    }
    const where = `tcp:${name}`;
    let stream: NetStream | undefined;
    const drop = () => {
      stream?.close();
      stream = undefined;
    };
    const lookup = async (key: string): Promise<string | undefined> => {
      let line: Uint8Array | undefined;
      let last = "";
      for (let tries = 0; line === undefined;) {
        try {
          stream ??= await NetStream.connect({ transport: "tcp", ...ep }, timeoutMs);
          try {
            await stream.write(new TextEncoder().encode(`get ${hexQuote(key)}\n`));
            line = await stream.readLine(MAX_REPLY);
          } catch (e) {
            const m = e instanceof NetError && e.eof ? `unexpected EOF` : (e as Error).message;
            last = `read TCP map reply from ${name}: ${m}`;
            opts.warn(last);
            drop();
          }
        } catch (e) {
          last = `connect to TCP map ${name}: ${(e as Error).message}`;
          opts.warn(last);
        }
        if (line !== undefined) break;
        if (++tries >= maxTries) throw new DictError(`${where}: ${last}`, "retry");
        await new Promise((r) => setTimeout(r, delay));
      }
      const raw = line.length >= 4 && [0, 1, 2].every((i) => line[i] >= 48 && line[i] <= 57) &&
          [9, 10, 11, 12, 13, 32].includes(line[3])
        ? hexUnquote(line.subarray(4))
        : undefined;
      if (raw === undefined) {
        drop();
        const m = `read TCP map reply from ${name}: malformed reply: ${printable(line)}`;
        opts.warn(m);
        throw new DictError(`${where}: ${m}`, "retry");
      }
      switch (line[0]) {
        case 50: // 2xx
          return new TextDecoder().decode(raw);
        case 53: // 5xx
          return undefined;
        case 52: // 4xx
          drop();
          throw new DictError(`${where}: server says: ${printable(line)}`, "retry");
        default: {
          drop();
          const m = `read TCP map reply from ${name}: bad status code: ${printable(line)}`;
          opts.warn(m);
          throw new DictError(`${where}: ${m}`, "retry");
        }
      }
    };
    return Promise.resolve({
      type: "tcp",
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

/** `tcp:` backend: connects to host:port. */
export const tcpBackend: DictBackend = {
  open: tcpOpener(),
  grants: (name) => {
    const ep = splitHostPort(name.trim());
    if (!ep) return Promise.reject(new DictError(`tcp:${name}: need "tcp:host:port"`, "config"));
    const host = ep.hostname.includes(":") ? `[${ep.hostname}]` : ep.hostname;
    return Promise.resolve({ net: [`${host}:${ep.port}`] });
  },
};
