/**
 * Postfix's smtp-sink as the benchmarks' next hop, with a running count of
 * the messages it accepted (read from its stdout), and smtp-source as their
 * load. Needs /usr/sbin/smtp-sink and /usr/sbin/smtp-source.
 *
 * @module
 */
import { freePort } from "../../tests/helpers/instance.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts smtp-source: `count` messages of `size` bytes over `sessions`
 * parallel sessions to 127.0.0.1:`port`, one message per connection (its
 * default); stderr piped for the error of a failed run.
 */
export function smtpSource(
  port: number,
  o: { sessions: number; count: number; size: number },
): Deno.ChildProcess {
  return new Deno.Command("/usr/sbin/smtp-source", {
    args: [
      ...["-s", String(o.sessions), "-m", String(o.count), "-l", String(o.size)],
      ...["-f", "a@example.com", "-t", "b@example.net"],
      `127.0.0.1:${port}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

/** smtp-sink with a running message counter read from its stdout. */
export class Sink {
  port = freePort();
  count = 0;
  #proc: Deno.ChildProcess;
  #done: Promise<void>;
  constructor() {
    this.#proc = new Deno.Command("/usr/sbin/smtp-sink", {
      args: ["-u", "nobody", "-c", `127.0.0.1:${this.port}`, "1000"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#done = this.#read();
  }
  async #read() {
    const dec = new TextDecoder();
    let tail = "";
    for await (const chunk of this.#proc.stdout) {
      tail = (tail + dec.decode(chunk, { stream: true })).slice(-200);
      const all = [...tail.matchAll(/mesg=(\d+)/g)];
      if (all.length) this.count = Math.max(this.count, Number(all[all.length - 1][1]));
    }
  }
  async ready() {
    const end = Date.now() + 10_000;
    while (Date.now() < end) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: this.port })).close();
        // That probe counts as a session, not a message.
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error("smtp-sink did not start");
  }
  async stop() {
    try {
      this.#proc.kill("SIGTERM");
    } catch {
      // gone
    }
    await this.#proc.status;
    await this.#done.catch(() => {});
  }
}
