/**
 * A scripted SMTP client for differential tests: plays a list of steps
 * (command lines, pipelined groups sent in one write, raw bytes, message
 * content) over one connection, optionally from a chosen local address
 * (127.0.0.2 for a client outside mynetworks), and returns every reply
 * whole, so two servers' answers can be compared line by line.
 *
 * node:net is used because Deno.connect cannot choose the local address.
 * A reply that does not come within the step timeout is recorded as
 * "<timeout>", a connection closed by the server as "<closed>": a session
 * never hangs and never throws for server behaviour.
 */
import net from "node:net";

/**
 * One step of a session:
 * - a string: one command line (CRLF added), one reply;
 * - `{ pipe }`: the lines in one write (CRLF after each), one reply each;
 * - `{ raw, replies }`: the bytes as given (a string, each char one byte), that many replies;
 * - `{ data }`: message content after a 354 (lines joined with CRLF, the
 *   final "." added, nothing dot-stuffed for you), one reply.
 */
export type Step =
  | string
  | { pipe: string[] }
  | { raw: string; replies: number }
  | { data: string[] };

/** What was sent in a step and what came back: each reply as its lines. */
export interface StepResult {
  sent: string;
  replies: string[][];
}

/** Options for {@link playScript}. */
export interface ScriptOptions {
  /** Local address to connect from. @default the system's choice (127.0.0.1) */
  localAddress?: string;
  /** How long to wait for each reply, in ms. @default 10000 */
  replyTimeoutMs?: number;
}

/** The bytes a step sends and how many replies it waits for. */
export function stepBytes(step: Step): { bytes: string; replies: number; label: string } {
  if (typeof step === "string") return { bytes: `${step}\r\n`, replies: 1, label: step };
  if ("pipe" in step) {
    return {
      bytes: step.pipe.map((l) => `${l}\r\n`).join(""),
      replies: step.pipe.length,
      label: step.pipe.join(" | "),
    };
  }
  if ("raw" in step) {
    return { bytes: step.raw, replies: step.replies, label: JSON.stringify(step.raw) };
  }
  return {
    bytes: [...step.data, "."].map((l) => `${l}\r\n`).join(""),
    replies: 1,
    label: `<${step.data.length} content lines>`,
  };
}

/** Latin-1: one byte per char, so raw steps can hold any byte. */
function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Plays the steps against host:port; the greeting comes first, as a step with `sent` "". */
export async function playScript(
  host: string,
  port: number,
  steps: Step[],
  opts: ScriptOptions = {},
): Promise<StepResult[]> {
  const timeout = opts.replyTimeoutMs ?? 10_000;
  const sock = net.connect({ host, port, localAddress: opts.localAddress });
  let buf = "";
  let closed = false;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  sock.on("data", (d: Uint8Array) => {
    buf += String.fromCharCode(...d);
    poke();
  });
  sock.on("close", () => {
    closed = true;
    poke();
  });
  sock.on("error", () => {
    closed = true;
    poke();
  });
  await new Promise<void>((resolve, reject) => {
    sock.once("connect", () => resolve());
    sock.once("error", reject);
  });
  /** The next whole reply, "<closed>" or "<timeout>". */
  const reply = async (): Promise<string[]> => {
    const end = Date.now() + timeout;
    for (;;) {
      const lines: string[] = [];
      let pos = 0;
      for (;;) {
        const nl = buf.indexOf("\n", pos);
        if (nl < 0) break;
        const line = buf.slice(pos, nl).replace(/\r$/, "");
        pos = nl + 1;
        lines.push(line);
        if (!/^\d{3}-/.test(line)) {
          buf = buf.slice(pos);
          return lines;
        }
      }
      if (closed) return ["<closed>"];
      const left = end - Date.now();
      if (left <= 0) return ["<timeout>"];
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        wake = r;
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
    }
  };
  const out: StepResult[] = [];
  try {
    out.push({ sent: "", replies: [await reply()] });
    for (const step of steps) {
      const { bytes, replies, label } = stepBytes(step);
      if (!closed) sock.write(bytesOf(bytes));
      const got: string[][] = [];
      for (let i = 0; i < replies; i++) got.push(await reply());
      out.push({ sent: label, replies: got });
    }
    return out;
  } finally {
    sock.destroy();
  }
}
