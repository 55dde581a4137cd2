/**
 * An SMTP next hop for scheduler tests that counts what a queue manager
 * controls: transactions in progress at once (and the most seen),
 * recipients per transaction, connections. Its behaviour is switched while
 * it runs: "stall" holds each end-of-data reply for `stallMs`, "421"
 * refuses new sessions at the greeting and cached ones at MAIL. No
 * PIPELINING, no extensions: commands are answered one at a time.
 */
/** A next hop whose behaviour the test switches: stall each message, or 421. */
export class ScriptedSink {
  mode: "stall" | "421" = "stall";
  stallMs = 400;
  /** Transactions (MAIL to end-of-data reply) in progress, and the most seen. */
  inTransaction = 0;
  maxInTransaction = 0;
  /** Transactions in progress when each one started, in order. */
  startedAt: number[] = [];
  delivered: string[][] = [];
  /** Each message: envelope and content (dot-stuffing undone). */
  messages: { from: string; to: string[]; data: string }[] = [];
  connections = 0;
  #listener: Deno.Listener | null = null;

  constructor(readonly hostname: string, readonly port: number) {}

  start(): void {
    this.#listener = Deno.listen({ hostname: this.hostname, port: this.port });
    (async () => {
      try {
        for await (const c of this.#listener!) void this.#serve(c).catch(() => {});
      } catch {
        // closed
      }
    })();
  }

  stop(): void {
    this.#listener?.close();
  }

  /** In "421" mode (read afresh: the mode changes while a session lasts). */
  get down(): boolean {
    return this.mode === "421";
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    this.connections++;
    const enc = new TextEncoder();
    const say = (s: string) => conn.write(enc.encode(s + "\r\n"));
    const lines = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    const readLine = async (): Promise<string | null> => {
      for (;;) {
        const i = buf.indexOf("\r\n");
        if (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          return line;
        }
        const { value, done } = await lines.read();
        if (done) return null;
        buf += value;
      }
    };
    let open = false;
    const end = () => {
      if (open) this.inTransaction--;
      open = false;
    };
    try {
      if (this.mode === "421") {
        await say("421 4.3.2 sink.test.example Service not available, closing channel");
        return;
      }
      await say("220 sink.test.example ESMTP");
      let rcpts: string[] = [];
      let from = "";
      for (;;) {
        const line = await readLine();
        if (line === null) return;
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO" || verb === "HELO") await say("250 sink.test.example");
        else if (verb === "MAIL") {
          if (this.down) {
            // A cached connection meets the outage too (the client reconnects).
            await say("421 4.3.2 sink.test.example Service not available, closing channel");
            return;
          }
          end();
          this.startedAt.push(this.inTransaction);
          open = true;
          this.inTransaction++;
          this.maxInTransaction = Math.max(this.maxInTransaction, this.inTransaction);
          rcpts = [];
          from = /<([^>]*)>/.exec(line)?.[1] ?? "";
          await say("250 2.1.0 Ok");
        } else if (verb === "RCPT") {
          rcpts.push(/<([^>]*)>/.exec(line)?.[1] ?? "");
          await say("250 2.1.5 Ok");
        } else if (verb === "DATA") {
          await say("354 End data with <CR><LF>.<CR><LF>");
          const data: string[] = [];
          for (;;) {
            const l = await readLine();
            if (l === null) return;
            if (l === ".") break;
            data.push(l.startsWith(".") ? l.slice(1) : l);
          }
          await new Promise((r) => setTimeout(r, this.stallMs));
          this.delivered.push(rcpts);
          this.messages.push({ from, to: rcpts, data: data.join("\r\n") + "\r\n" });
          end();
          await say("250 2.0.0 Ok: queued");
        } else if (verb === "QUIT") {
          await say("221 2.0.0 Bye");
          return;
        } else if (verb === "RSET") {
          end();
          await say("250 2.0.0 Ok");
        } else await say("502 5.5.2 Error: command not recognized");
      }
    } finally {
      end();
      try {
        conn.close();
      } catch {
        // closed
      }
    }
  }
}
