/**
 * A small scripted LMTP server for the lmtp agent's tests, on a UNIX-domain
 * socket or on 127.0.0.1 port 0: answers LHLO/MAIL/RCPT/DATA/RSET/QUIT,
 * and after the content one reply per accepted recipient (RFC 2033), each
 * replaceable by the test; it can stop answering, or close the connection
 * part way through the per-recipient replies, to play a broken server.
 * Records connections, commands and messages. Test-only.
 */

/** Replies the test may override. */
export interface FakeLmtpScript {
  greeting?: string;
  /** LHLO keywords; a string: that whole reply instead (e.g. "500 5.5.1 no"). */
  lhlo?: string[] | string;
  mail?: (arg: string) => string;
  rcpt?: (arg: string) => string;
  data?: string;
  /** Reply to end of data for one accepted recipient; null: never answer. */
  final?: ((rcpt: string, msg: FakeLmtpMessage) => string) | null;
  /** Close the connection after this many end-of-data replies. */
  closeAfterReplies?: number;
}

const MAIL_GIVEN = "503 5.5.1 MAIL already given";

/** One message as received. */
export interface FakeLmtpMessage {
  mailFrom: string;
  rcptTo: string[];
  /** The content, dot-stuffing removed, as latin1. */
  content: string;
}

const enc = new TextEncoder();

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

/** The running fake server. */
export class FakeLmtpServer {
  readonly listener: Deno.Listener;
  connections = 0;
  readonly messages: FakeLmtpMessage[] = [];
  readonly commands: string[] = [];
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #loop: Promise<void>;

  /** Listens on `where`: a UNIX-domain path, or a port on 127.0.0.1 (default: a free one). */
  constructor(readonly script: FakeLmtpScript = {}, where?: string | number) {
    this.listener = typeof where === "string"
      ? Deno.listen({ transport: "unix", path: where })
      : Deno.listen({ hostname: "127.0.0.1", port: where ?? 0 });
    this.#loop = this.#accept();
  }

  /** The TCP port (TCP listeners only). */
  get port(): number {
    return (this.listener.addr as Deno.NetAddr).port;
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.listener) {
        this.connections++;
        this.#conns.add(conn);
        const t = this.#serve(conn).catch(() => {}).finally(() => {
          this.#conns.delete(conn);
          try {
            conn.close();
          } catch {
            // closed
          }
        });
        this.#tasks.add(t);
        t.finally(() => this.#tasks.delete(t));
      }
    } catch {
      // listener closed
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const s = this.script;
    const send = (line: string) => conn.write(enc.encode(line + "\r\n"));
    await send(s.greeting ?? "220 fake.test LMTP ready");
    if (!(s.greeting ?? "220").startsWith("220")) return;
    let buf = "";
    let inData = false;
    let msg: FakeLmtpMessage | null = null;
    let replies = 0;
    const chunk = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) return;
      buf += latin1(chunk.subarray(0, n));
      for (;;) {
        if (inData) {
          const probe = "\r\n" + buf;
          const end = probe.indexOf("\r\n.\r\n");
          if (end < 0) break;
          const raw = probe.slice(2, end + 2);
          buf = probe.slice(end + 5);
          inData = false;
          msg!.content = raw.replace(/(^|\n)\./g, "$1");
          this.messages.push(msg!);
          if (s.final === null) continue;
          for (const r of msg!.rcptTo) {
            await send((s.final ?? (() => "250 2.0.0 Ok delivered"))(r, msg!));
            if (s.closeAfterReplies !== undefined && ++replies >= s.closeAfterReplies) return;
          }
          msg = null;
          continue;
        }
        const lf = buf.indexOf("\r\n");
        if (lf < 0) break;
        const line = buf.slice(0, lf);
        buf = buf.slice(lf + 2);
        this.commands.push(line);
        const verb = line.split(" ")[0].toUpperCase();
        const arg = line.slice(verb.length).trim();
        switch (verb) {
          case "LHLO":
            if (typeof s.lhlo === "string") await send(s.lhlo);
            else {
              const lines = [
                "fake.test",
                ...(s.lhlo ?? ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]),
              ];
              await send(
                lines.map((l, i) => `250${i < lines.length - 1 ? "-" : " "}${l}`).join("\r\n"),
              );
            }
            break;
          case "MAIL": {
            // As Dovecot: a transaction left open (no RSET, no content) refuses a new MAIL.
            const reply = msg ? MAIL_GIVEN : (s.mail ?? (() => "250 2.1.0 OK"))(arg);
            if (reply.startsWith("2")) msg = { mailFrom: arg, rcptTo: [], content: "" };
            await send(reply);
            break;
          }
          case "RCPT": {
            const reply = (s.rcpt ?? (() => "250 2.1.5 OK"))(arg);
            if (reply.startsWith("2") && msg) msg.rcptTo.push(arg);
            await send(reply);
            break;
          }
          case "DATA":
            if (!msg || msg.rcptTo.length === 0) await send("503 5.5.1 No valid recipients");
            else {
              const reply = s.data ?? "354 OK";
              await send(reply);
              if (reply.startsWith("354")) inData = true;
            }
            break;
          case "RSET":
            msg = null;
            await send("250 2.0.0 OK");
            break;
          case "QUIT":
            await send("221 2.0.0 Bye");
            return;
          default:
            await send("500 5.5.1 Unknown command");
        }
      }
    }
  }

  /** Stops listening and drops every connection. */
  async close(): Promise<void> {
    this.listener.close();
    for (const c of this.#conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    await this.#loop;
    await Promise.allSettled([...this.#tasks]);
  }
}
