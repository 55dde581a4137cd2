/**
 * A tiny SMTP sink for tests (PIPELINING-capable): accepts everything,
 * records each message, and can be stopped and restarted on the same
 * port. With options it also plays a content filter: extra EHLO keywords
 * (e.g. XFORWARD), the other commands of each transaction recorded, and a
 * hook that gives the end-of-data reply (re-sending the message first).
 * Real peers (Postfix's smtp-sink) are used by tests/interop.
 */
import { DataDecoder, LineReader, parseCommand } from "../../lib/smtp/mod.ts";

export interface SinkMessage {
  /** The EHLO, HELO or LHLO name. */
  helo: string;
  /** The session was LMTP (LHLO). */
  lmtp: boolean;
  from: string;
  to: string[];
  data: string;
  /** Commands other than EHLO, MAIL, RCPT, DATA and QUIT since the last message (XFORWARD ...). */
  extra: string[];
}

/** What a {@link TestSink} offers and does beyond accepting. */
export interface SinkOptions {
  /** EHLO keywords offered besides PIPELINING, 8BITMIME and SIZE. */
  ehlo?: string[];
  /** The end-of-data reply for a message (default "250 2.0.0 Ok: queued as S<n>"). */
  onMessage?: (m: SinkMessage) => Promise<string | undefined>;
  /** Address to listen on. @default "127.0.0.1" */
  hostname?: string;
}

export class TestSink {
  messages: SinkMessage[] = [];
  /** The most connections open at the same time. */
  maxOpen = 0;
  #listener: Deno.Listener | null = null;
  #conns = new Set<Deno.Conn>();

  constructor(readonly port: number, readonly opts: SinkOptions = {}) {}

  start(): void {
    this.#listener = Deno.listen({ hostname: this.opts.hostname ?? "127.0.0.1", port: this.port });
    (async () => {
      try {
        for await (const c of this.#listener!) void this.#serve(c);
      } catch {
        // closed
      }
    })();
  }

  stop(): void {
    this.#listener?.close();
    this.#listener = null;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    this.#conns.clear();
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.#conns.add(conn);
    this.maxOpen = Math.max(this.maxOpen, this.#conns.size);
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const lines = new LineReader();
    const buf = new Uint8Array(65536);
    const w = (s: string) => conn.write(enc.encode(s));
    let from = "";
    let helo = "";
    let lmtp = false;
    let to: string[] = [];
    let extra: string[] = [];
    try {
      await w("220 sink ESMTP\r\n");
      for (;;) {
        let l = lines.next();
        while (!l) {
          const n = await conn.read(buf);
          if (n === null) return;
          lines.push(buf.slice(0, n));
          l = lines.next();
        }
        const cmd = parseCommand(l.line);
        switch (cmd.verb) {
          case "HELO":
            helo = cmd.arg.trim();
            await w("250 sink\r\n");
            break;
          case "LHLO":
          case "EHLO":
            helo = cmd.arg.trim();
            lmtp = cmd.verb === "LHLO";
            await w(
              ["sink", ...(this.opts.ehlo ?? []), "PIPELINING", "8BITMIME", "SIZE 100000000"]
                .map((k, i, all) => `250${i === all.length - 1 ? " " : "-"}${k}\r\n`).join(""),
            );
            break;
          case "MAIL":
            from = cmd.arg.replace(/^FROM:\s*<?([^>\s]*)>?.*$/i, "$1");
            to = [];
            await w("250 2.1.0 Ok\r\n");
            break;
          case "RCPT":
            to.push(cmd.arg.replace(/^TO:\s*<?([^>\s]*)>?.*$/i, "$1"));
            await w("250 2.1.5 Ok\r\n");
            break;
          case "DATA": {
            await w("354 go\r\n");
            const d = new DataDecoder();
            const parts: string[] = [];
            let pending = lines.takeBuffered();
            for (;;) {
              const r = d.push(pending);
              for (const o of r.out) parts.push(dec.decode(o));
              if (r.done) {
                if (r.rest?.length) lines.push(r.rest);
                break;
              }
              const n = await conn.read(buf);
              if (n === null) return;
              pending = buf.slice(0, n);
            }
            const m = { helo, lmtp, from, to, data: parts.join(""), extra };
            extra = [];
            this.messages.push(m);
            const reply = (await this.opts.onMessage?.(m)) ??
              `250 2.0.0 Ok: queued as S${this.messages.length}`;
            await w(`${reply}\r\n`.repeat(lmtp ? Math.max(1, to.length) : 1));
            break;
          }
          case "QUIT":
            await w("221 2.0.0 Bye\r\n");
            return;
          default:
            extra.push(dec.decode(l.line));
            await w("250 2.0.0 Ok\r\n");
        }
      }
    } catch {
      // peer went away
    } finally {
      this.#conns.delete(conn);
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  }
}
