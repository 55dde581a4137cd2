/**
 * A scripted SMTP client for differential tests: plays a list of steps
 * (command lines, pipelined groups sent in one write, raw bytes, message
 * content) over one connection, optionally from a chosen local address
 * (127.0.0.2 for a client outside mynetworks), and returns every reply
 * whole, so two servers' answers can be compared line by line.
 *
 * It is the tests' one dialog runner, on smtp_client.ts's reply reader.
 * A reply that does not come within the step timeout is recorded as
 * "<timeout>", a connection closed by the server as "<closed>": a session
 * never hangs and never throws for server behaviour; with `strict` those
 * throw instead, saying what was sent and what came.
 */
import { latin1Bytes, SmtpClient, SmtpConnectionClosed, SmtpReplyTimeout } from "./smtp_client.ts";

/**
 * One step of a session:
 * - a string: one command line (CRLF added), one reply;
 * - `{ pipe }`: the lines in one write (CRLF after each), one reply each;
 * - `{ raw, replies }`: the bytes as given (a string, each char one byte), that many replies;
 * - `{ data }`: message content after a 354 (lines joined with CRLF, the
 *   final "." added, nothing dot-stuffed for you), one reply;
 * - `{ startTls }`: the TLS handshake (after a 220 to STARTTLS), verifying
 *   the server as mx.test.example against that CA (PEM); no reply. Not
 *   with `localAddress`.
 */
export type Step =
  | string
  | { pipe: string[] }
  | { raw: string; replies: number }
  | { data: string[] }
  | { startTls: string };

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
  /** Throw on a reply that times out or a closed connection instead of recording it. @default false */
  strict?: boolean;
  /** How replies are decoded. @default "latin1" (one char a byte) */
  encoding?: "utf-8" | "latin1";
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
  if ("startTls" in step) return { bytes: "", replies: 0, label: "<TLS>" };
  return {
    bytes: [...step.data, "."].map((l) => `${l}\r\n`).join(""),
    replies: 1,
    label: `<${step.data.length} content lines>`,
  };
}

/** Plays the steps against host:port; the greeting comes first, as a step with `sent` "". */
export async function playScript(
  host: string,
  port: number,
  steps: Step[],
  opts: ScriptOptions = {},
): Promise<StepResult[]> {
  const client = await SmtpClient.connect(port, {
    host,
    localAddress: opts.localAddress,
    replyTimeoutMs: opts.replyTimeoutMs,
    encoding: opts.encoding ?? "latin1",
  });
  /** The next whole reply, "<closed>" or "<timeout>" (with `strict`, those throw). */
  const reply = async (): Promise<string[]> => {
    try {
      return await client.reply();
    } catch (e) {
      if (opts.strict) throw e;
      if (e instanceof SmtpConnectionClosed) return ["<closed>"];
      if (e instanceof SmtpReplyTimeout) return ["<timeout>"];
      throw e;
    }
  };
  const out: StepResult[] = [];
  try {
    out.push({ sent: "", replies: [await reply()] });
    for (const step of steps) {
      const { bytes, replies, label } = stepBytes(step);
      if (typeof step === "object" && "startTls" in step) {
        await client.startTls(step.startTls);
      } else if (!client.closed) {
        await client.send(latin1Bytes(bytes), label).catch((e) => {
          if (opts.strict) throw e;
        });
      }
      const got: string[][] = [];
      for (let i = 0; i < replies; i++) got.push(await reply());
      out.push({ sent: label, replies: got });
    }
    return out;
  } finally {
    client.close();
  }
}
