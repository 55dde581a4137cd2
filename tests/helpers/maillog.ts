/**
 * Waiting for log lines: the tests' one way to wait until an instance's
 * maillog (Postwarden's or a real Postfix's) shows something. The file is
 * read incrementally (only what was appended since the last look), checked
 * after every read, and a log that never shows it fails with the pattern,
 * the file and its last lines, instead of returning a partial log or
 * hanging. Never a fixed sleep: a log line that is late is waited for, one
 * that is early is not slept past.
 *
 * What a test waits for must be the last line it needs: a count of
 * "disconnect from" lines that the readiness probe also writes, or a line
 * logged before the one compared, leaves a log-lag race.
 */

/** Anything with a maillog file (Instance, PostfixInstance). */
export interface HasMaillog {
  maillog: string;
}

/** What to wait for: text the log includes, a pattern it matches, or a test of the whole log. */
export type LogCondition = string | RegExp | ((log: string) => boolean);

/** The log so far, read incrementally: each `read()` adds what was appended. */
export class LogReader {
  #text = "";
  #offset = 0;
  readonly #dec = new TextDecoder();
  constructor(readonly path: string) {}

  /** The whole log up to now ("" while the file does not exist). */
  async read(): Promise<string> {
    let f: Deno.FsFile;
    try {
      f = await Deno.open(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return this.#text;
      throw e;
    }
    try {
      await f.seek(this.#offset, Deno.SeekMode.Start);
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await f.read(buf);
        if (n === null) break;
        this.#offset += n;
        this.#text += this.#dec.decode(buf.subarray(0, n), { stream: true });
      }
    } finally {
      f.close();
    }
    return this.#text;
  }
}

/** How many lines of the log match the pattern. */
export function countLines(log: string, pattern: RegExp): number {
  return log.split("\n").filter((l) => pattern.test(l)).length;
}

function holds(log: string, cond: LogCondition): boolean {
  if (typeof cond === "string") return log.includes(cond);
  if (cond instanceof RegExp) {
    cond.lastIndex = 0;
    return cond.test(log);
  }
  return cond(log);
}

/**
 * Waits until the instance's maillog shows `cond`; returns the whole log
 * as read then. Throws after `timeoutMs` with the condition and the log's
 * last lines.
 */
export async function waitForLog(
  inst: HasMaillog,
  cond: LogCondition,
  timeoutMs = 15_000,
): Promise<string> {
  const reader = new LogReader(inst.maillog);
  const end = Date.now() + timeoutMs;
  for (;;) {
    const log = await reader.read();
    if (holds(log, cond)) return log;
    if (Date.now() > end) {
      const what = typeof cond === "function" ? cond.toString() : String(cond);
      const tail = log.split("\n").slice(-30).join("\n");
      throw new Error(
        `${inst.maillog} did not show ${what} within ${timeoutMs} ms; its last lines:\n${tail}`,
      );
    }
    // A poll interval, not a wait for the line: the next read looks again.
    await new Promise((r) => setTimeout(r, 50));
  }
}
